"""Check that the locks still match pyproject.toml (CI runs it; scripts/lock fixes a mismatch).

Every dependency pyproject.toml names must be pinned in requirements.lock, and every test extra
in requirements-test.lock too, at a version its range allows.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

sys.path.insert(0, str(Path(__file__).resolve().parent))
from known_bad import ROOT, pins  # a sibling script


def mismatches(requirements: list[str], lock: Path) -> list[str]:
    """One line per requirement the lock leaves out or pins outside its range."""
    pinned: dict[str, list] = {}
    for name, version in pins(lock):
        pinned.setdefault(name, []).append(version)
    problems = []
    for text in requirements:
        req = Requirement(text)
        versions = pinned.get(canonicalize_name(req.name))
        if not versions:
            problems.append(f"{lock.name}: {req.name} is not pinned (pyproject.toml: {text})")
        for version in versions or []:
            if not req.specifier.contains(version, prereleases=True):
                problems.append(f"{lock.name}: {req.name}=={version} is outside {text}")
    return problems


def main(root: Path = ROOT) -> int:
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    runtime = project["dependencies"]
    test = runtime + project["optional-dependencies"]["test"]
    problems = mismatches(runtime, root / "requirements.lock")
    problems += mismatches(test, root / "requirements-test.lock")
    for line in problems:
        print(f"lock-check: {line}")
    if problems:
        print("lock-check: the locks are out of date: run scripts/lock and commit both files")
        return 1
    print("lock-check: requirements.lock and requirements-test.lock match pyproject.toml")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT))
