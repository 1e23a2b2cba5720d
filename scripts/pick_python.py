"""Pick the Python that scripts/test and scripts/serve build .venv with (stdlib only).

The newest supported interpreter on this machine that scripts/python_check.py passes, looked
for as python3.13, python3.12, python3.11 and python3 on PATH and in pyenv's versions folder.
Prints its real path on stdout and why on stderr. When none passes, python3, with a warning.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
CHECK = SCRIPTS / "python_check.py"
# The minor lines the locks resolve for and the suite has run on, newest first.
SUPPORTED = ((3, 13), (3, 12), (3, 11))
NAMES = ("python3.13", "python3.12", "python3.11", "python3")


def candidate_paths() -> list[str]:
    """Interpreters by name on PATH, then pyenv's of the supported lines. pyenv's shims are
    left out: each runs one of those versions, and only the one currently selected."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found = [shutil.which(name) for name in NAMES]
    found = [path for path in found if path and Path(path).parent != pyenv / "shims"]
    for folder in sorted((pyenv / "versions").glob("3.*")):
        if tuple(int(p) for p in folder.name.split(".")[:2] if p.isdigit()) in SUPPORTED:
            found.append(str(folder / "bin" / "python3"))
    return found


def describe(path: str) -> tuple[tuple[int, ...], str] | None:
    """(version, real executable) of an interpreter, or None when it does not start (a pyenv
    shim for a version that is not selected exits non-zero)."""
    code = "import os, sys; print(*sys.version_info[:3]); print(os.path.realpath(sys.executable))"
    try:
        done = subprocess.run([path, "-I", "-c", code], capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    if done.returncode != 0:
        return None
    version, real = done.stdout.splitlines()[:2]
    return tuple(int(part) for part in version.split()), real


def supported() -> list[tuple[tuple[int, ...], str]]:
    """Distinct supported interpreters, newest first (PATH before pyenv on a tie)."""
    seen: dict[str, tuple[int, ...]] = {}
    for path in candidate_paths():
        described = describe(path)
        if described and described[0][:2] in SUPPORTED:
            seen.setdefault(described[1], described[0])
    ranked = sorted(seen.items(), key=lambda item: item[1], reverse=True)
    return [(version, real) for real, version in ranked]


def check(real: str) -> tuple[bool, list[str]]:
    """Whether python_check passes under this interpreter, and its lines."""
    done = subprocess.run([real, "-I", str(CHECK)], capture_output=True, text=True, timeout=60)
    return done.returncode == 0, done.stdout.splitlines()[1:]


def say(text: str) -> None:
    print(f"scripts: {text}", file=sys.stderr)


def dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


def main() -> int:
    rejected = []
    for version, real in supported():
        passed, lines = check(real)
        if passed:
            say(f".venv uses Python {dotted(version)} ({real}): the newest supported")
            say("  interpreter here without a known-bad email package")
            for name, why in rejected:
                say(f"  passed over {name}: {why}")
            for line in lines:
                if "(warn): present" in line:
                    say(f"  note: {line.strip()}")
            print(real)
            return 0
        failing = [line.strip() for line in lines if "(fail): present" in line]
        rejected.append((f"Python {dotted(version)} ({real})", "; ".join(failing)))
    return fallback(rejected)


def fallback(rejected: list[tuple[str, str]]) -> int:
    python3 = describe(shutil.which("python3") or sys.executable)
    real = python3[1] if python3 else sys.executable
    say(f"WARNING: no Python here passes scripts/python_check.py; .venv uses {real}.")
    for name, why in rejected:
        say(f"  {name}: {why}")
    say("  CVE-2024-6923 (email header injection through RFC 2047 encoded words) is fixed")
    say("  in Python 3.11.10, 3.12.5 and 3.13.0. leadmagnet refuses names holding encoded")
    say("  words and checks the headers it writes, so signups cannot add headers even here;")
    say("  still, install a fixed Python (README: Dependencies and security updates).")
    print(real)
    return 0


if __name__ == "__main__":
    sys.exit(main())
