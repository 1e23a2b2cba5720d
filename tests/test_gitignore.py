"""The settings file with secrets stays out of git; its example stays in."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.test_compose import ROOT


def ignored(path: str) -> bool:
    done = subprocess.run(
        ["git", "check-ignore", "--quiet", "--no-index", path], cwd=ROOT, check=False
    )
    assert done.returncode in (0, 1), "git check-ignore failed"
    return done.returncode == 0


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_env_is_ignored_and_env_example_is_not():
    assert ignored(".env")
    assert ignored("deploy/.env")  # wherever a copy lands
    assert not ignored(".env.example")
