"""The command line names an unreachable database in one line, never a traceback."""

from __future__ import annotations

import subprocess

from tests.procs import BIN, clean_env


def test_an_unreachable_database_is_one_line(tmp_path):
    env = clean_env(
        DATABASE_URL="postgresql://postgres@127.0.0.1:1/nowhere",
        SECRET_KEY="cli-test-key-Jn4Vx8Qm2Rt7Kz3Wp9Lb6Hs",
        INSTANCE_PATH=str(tmp_path / "instance"),
    )
    for command in (["dispatch"], ["db", "upgrade"], ["serve", "--port", "1"]):
        done = subprocess.run(
            [str(BIN / "leadmagnet"), *command], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode != 0
        assert "Traceback" not in done.stderr
        assert "cannot reach the database named by DATABASE_URL" in done.stderr
