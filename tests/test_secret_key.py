"""A guessable SECRET_KEY stops the start: whoever knows the key forges every link."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from service.settings import Settings, SettingsError
from tests.conftest import SECRET
from tests.procs import BIN
from tests.test_compose import ROOT, env_example

MAKE_A_KEY = "secrets.token_urlsafe(48)"
WEAK = {
    # What .env.example shipped: the review forged unsubscribe tokens with it.
    "placeholder": "change-me-to-a-long-random-string",
    "change-me": "Prod-Key-CHANGE-ME-7Gd2Kq9Vx4Lm8Rt3Wz6",
    "short": "Hq6Vt2Mx9Rz4Kw8Lp3Nb7Js5DfQa1Yc",  # 31 characters
    "low-entropy": "abcdefghi" * 4,  # 36 characters, 9 different ones
    "weak-old-key": f"{SECRET},old-key-0123456789",  # old keys still verify links
}


def start(tmp_path: Path, **settings: str) -> subprocess.CompletedProcess:
    """`leadmagnet dispatch` on the embedded default, as an owner would start it."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "INSTANCE_PATH": str(tmp_path / "instance"),
        **settings,
    }
    return subprocess.run(
        [str(BIN / "leadmagnet"), "dispatch"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def refusal(done: subprocess.CompletedProcess) -> str:
    """The one line a refused start prints."""
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr + done.stdout
    assert "dispatch:" not in done.stdout  # nothing was dispatched
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("leadmagnet: setting SECRET_KEY ")
    return lines[0]


@pytest.mark.parametrize("kind", WEAK)
def test_a_guessable_secret_key_stops_the_start_with_one_line(tmp_path: Path, kind: str):
    line = refusal(start(tmp_path, SECRET_KEY=WEAK[kind]))
    assert MAKE_A_KEY in line  # how to make a good one
    assert not any(key in line for key in WEAK[kind].split(","))  # no key is echoed


@pytest.mark.parametrize("content", ["", "  \n", "short-key"])
def test_a_broken_instance_key_file_stops_the_start_naming_the_file(tmp_path: Path, content: str):
    (tmp_path / "instance").mkdir()
    key_file = tmp_path / "instance" / "secret_key"
    key_file.write_text(content)
    line = refusal(start(tmp_path))
    assert str(key_file) in line and "delete the file" in line
    assert key_file.read_text() == content  # left for the owner to decide


def test_the_env_example_as_shipped_stops_the_start():
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env_example())
    assert caught.value.name == "SECRET_KEY" and MAKE_A_KEY in caught.value.problem


@pytest.mark.parametrize(
    ("key", "accepted"),
    [
        ("0123456789" * 3 + "ab", True),  # 32 characters, 12 different ones
        ("0123456789" * 3 + "a", False),  # 31
        ("0123456789" + "9" * 22, True),  # 10 different ones
        ("012345678" + "8" * 23, False),  # 9
        (f"{SECRET},{SECRET[::-1]}", True),
    ],
)
def test_the_thresholds_are_32_characters_and_10_different_ones(
    tmp_path: Path, key: str, accepted: bool
):
    env = {"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": key}
    if accepted:
        assert Settings.from_env(env).secret_keys == tuple(key.split(","))
    else:
        with pytest.raises(SettingsError, match="SECRET_KEY"):
            Settings.from_env(env)


def test_the_generated_instance_key_is_kept_and_accepted(tmp_path: Path):
    first = Settings.from_env({"INSTANCE_PATH": str(tmp_path)}).secret_keys
    assert Settings.from_env({"INSTANCE_PATH": str(tmp_path)}).secret_keys == first
    assert len(first[0]) >= 32


def test_the_readme_example_keys_are_refused():
    section = (ROOT / "README.md").read_text().split("### Rotating SECRET_KEY", 1)[1]
    line = next(line for line in section.splitlines() if line.startswith("SECRET_KEY="))
    for key in line.removeprefix("SECRET_KEY=").split(","):
        with pytest.raises(SettingsError, match="published"):
            Settings.from_env({"SECRET_KEY": key, "INSTANCE_PATH": "unused"})
