"""README's settings table against the code, and malformed settings against a real start."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import SECRET
from tests.procs import BIN
from tests.test_compose import ROOT, settings_read

TABLE_ROW = re.compile(r"^\| `([A-Z][A-Z0-9_]*)` \|")


def readme_settings() -> list[str]:
    """The first column of the table under README's "## Settings" heading."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    return [m.group(1) for line in section.splitlines() if (m := TABLE_ROW.match(line))]


def test_the_readme_table_lists_exactly_the_settings_the_code_reads():
    listed = readme_settings()
    assert len(listed) == len(set(listed)), "a setting is listed twice"
    assert set(listed) == settings_read()


MALFORMED = [
    ("DATABASE_URL", "mysql://db.example.com/leads"),
    ("DATABASE_URL", "not a url at all"),
    ("EMAIL_URL", "gopher://mail.example.com"),
    ("EMAIL_URL", "smtp://mail.example.com:port"),
    ("DISPATCH_INTERVAL", "soon"),
    ("DISPATCH_INTERVAL", "-5"),
    ("TRUSTED_PROXIES", "-1"),
    ("TRUSTED_PROXIES", "two"),
    ("METRICS_PORT", "70000"),
    ("METRICS_PORT", "metrics"),
    ("METRICS_TOKEN", "short"),
    ("LOG_FORMAT", "xml"),
    ("STORAGE_URL", "ftp://files.example.com"),
    ("EMAIL_MIN_GAP", "an hour"),
    ("EMAIL_MIN_GAP", "-1h"),
]


@pytest.mark.parametrize(("name", "value"), MALFORMED)
def test_a_malformed_setting_stops_dispatch_with_one_line(tmp_path: Path, name: str, value: str):
    # Only what a shell would have, the bad setting, and a key (DATABASE_URL asks for one).
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SECRET_KEY": SECRET,
        name: value,
    }
    done = subprocess.run(
        [str(BIN / "leadmagnet"), "dispatch"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"leadmagnet: setting {name} ")
    assert "Traceback" not in done.stderr + done.stdout
    assert "dispatch:" not in done.stdout  # nothing was dispatched
