"""mypy, as CI runs it, is strict enough that a wrong argument to a use case fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_compose import ROOT

SCRATCH = """
from service.capture.signup import sign_up
from service.capture.validation import SignupInput
from service.people.consent import RequestMeta
from service.sending.context import Context
from service.sending.delivery import deliver


def right(ctx: Context, data: SignupInput, meta: RequestMeta) -> None:
    deliver(ctx, 42)
    sign_up(ctx, data, meta)


def wrong(ctx: Context, meta: RequestMeta) -> None:
    deliver(ctx, "42")  # an id as text
    sign_up(ctx, {"email": "ann@example.com"}, meta)  # the raw form, not validated input
    deliver(42)  # no context
"""


def mypy(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "pyproject.toml", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.mark.slow
def test_mypy_refuses_a_wrong_argument_to_a_use_case(tmp_path: Path):
    scratch = tmp_path / "scratch_calls.py"
    scratch.write_text(SCRATCH)
    done = mypy(scratch)
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    lines = {int(line.split(":")[1]) for line in errors}
    wrong_calls = {n for n, text in enumerate(SCRATCH.splitlines(), 1) if "  # " in text}
    assert done.returncode == 1, done.stdout + done.stderr
    assert lines == wrong_calls, "\n".join(errors)  # each wrong call, and nothing else
