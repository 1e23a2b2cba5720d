"""The magnet commands as an operator runs them: errors are one `leadmagnet: ` line, and
INFO log lines show only under --verbose."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.test_cli_errors import KEY, leadmagnet, one_line

KNEES = Path(__file__).resolve().parent / "fixtures" / "knee-checklist"


def test_magnet_commands_print_their_output_alone_and_errors_in_one_line(tmp_path: Path):
    settings = {"SECRET_KEY": KEY, "INSTANCE_PATH": str(tmp_path / "instance")}
    upgraded = leadmagnet("db", "upgrade", cwd=tmp_path, **settings)
    assert (upgraded.returncode, upgraded.stdout, upgraded.stderr) == (0, "", "")
    listed = leadmagnet("magnets", "list", cwd=tmp_path, **settings)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("inside-out-strength\t")
    assert listed.stderr == "", "the default magnet's first load is logged at INFO, not shown"
    verbose = leadmagnet("--verbose", "db", "upgrade", cwd=tmp_path, **settings)
    assert json.loads(verbose.stderr.splitlines()[0])["level"] == "INFO"
    assert one_line(leadmagnet("magnets", "show", "nope", cwd=tmp_path, **settings)) == (
        "leadmagnet: no magnet 'nope': `leadmagnet magnets list` shows them"
    )
    folder = tmp_path / "knee-checklist"
    shutil.copytree(KNEES, folder)
    (folder / "guide" / "subject.txt").write_text("{{ ''.__class__.__mro__ }}\n")
    refused = one_line(leadmagnet("content", "import", str(folder), cwd=tmp_path, **settings))
    assert refused.startswith("leadmagnet: ") and refused.endswith(
        "step 'guide': template 'guide/subject.txt' reaches '__mro__' (line 1), "
        "which templates may not use"
    )
    out = tmp_path / "out"
    assert leadmagnet("content", "export", str(out), cwd=tmp_path, **settings).returncode == 0
    again = one_line(leadmagnet("content", "export", str(out), cwd=tmp_path, **settings))
    assert again.endswith("is not empty: export into a new folder")
