"""Check the locks and the running Python against security/known-bad.toml (CI runs it).

`.venv/bin/python scripts/known_bad.py [LOCK ...]` (default: both locks) prints every pinned
release the list names and every interpreter bug its probe finds, and exits 1 if there is one.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

sys.path.insert(0, str(Path(__file__).resolve().parent))
import python_check  # a sibling script, stdlib only

ROOT = Path(__file__).resolve().parent.parent
LOCKS = (ROOT / "requirements.lock", ROOT / "requirements-test.lock")
# A pin in a lock written by scripts/lock: `name==version` at the start of a line.
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def pins(lock: Path) -> list[tuple[str, Version]]:
    """Every (name, version) pinned in a lock, a name twice when markers split it."""
    return [(canonicalize_name(n), Version(v)) for n, v in PIN.findall(lock.read_text())]


def package_hits(entries: list[dict], lock: Path) -> list[str]:
    """One line per pin in this lock that an entry names."""
    hits = []
    for name, version in pins(lock):
        for entry in entries:
            if canonicalize_name(entry["name"]) == name and version in SpecifierSet(entry["bad"]):
                hits.append(f"{lock.name}: {name}=={version} is {entry['id']}: {entry['why']}")
    return hits


def interpreter_hits(entries: list[dict]) -> tuple[list[str], list[str]]:
    """(failures, warnings) for the interpreter running this script."""
    results = python_check.findings(entries)
    failures = [r.line for r in results if r.present and r.action == "fail"]
    warnings = [r.line for r in results if r.present and r.action != "fail"]
    return failures, warnings


def main(argv: list[str]) -> int:
    known = tomllib.loads(python_check.KNOWN_BAD.read_text())
    locks = [Path(arg) for arg in argv] or list(LOCKS)
    failures = [hit for lock in locks for hit in package_hits(known.get("package", []), lock)]
    python_failures, warnings = interpreter_hits(known.get("python", []))
    here = f"Python {sys.version.split()[0]} ({sys.executable})"
    failures += [f"{here}: {line}" for line in python_failures]
    for line in warnings:
        print(f"known-bad: warning: {here}: {line}")
    for line in failures:
        print(f"known-bad: {line}")
    checked = ", ".join(lock.name for lock in locks)
    print(f"known-bad: {len(failures)} known-bad in {checked} and {here}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
