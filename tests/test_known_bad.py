"""The known-bad list against locks and interpreters, the Python the scripts pick, lock checks."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import packaging
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
PYENV = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
DEBIAN_311 = Path("/usr/bin/python3.11")


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


python_check = load("python_check")
CVE_2024_6923 = next(e for e in python_check.python_entries() if e["id"] == "CVE-2024-6923")


def pyenv_builds() -> dict[tuple[int, ...], Path]:
    """pyenv's CPython builds (upstream sources, no backported fixes) by version."""
    builds = {}
    for folder in (PYENV / "versions").glob("3.1[1-9].*"):
        parts = folder.name.split(".")
        if all(p.isdigit() for p in parts) and (folder / "bin" / "python3").exists():
            builds[tuple(map(int, parts))] = (folder / "bin" / "python3").resolve()
    return builds


def builds_where(unfixed: bool) -> list[Path]:
    says = python_check.upstream_says_vulnerable
    return [
        p
        for v, p in sorted(pyenv_builds().items())
        if says(v, CVE_2024_6923["fixed_in"]) == unfixed
    ]


def need(paths: list[Path], what: str) -> list[Path]:
    if not paths:
        pytest.skip(f"no {what} on this machine")
    return paths


def run(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
    )


# The locks against the list


def test_a_lock_that_names_flask_3_1_0_fails(tmp_path: Path):
    lines = (ROOT / "requirements.lock").read_text().splitlines(keepends=True)
    assert sum(line.startswith("flask==") for line in lines) == 1
    lock = tmp_path / "requirements.lock"
    lock.write_text(
        "".join("flask==3.1.0 \\\n" if line.startswith("flask==") else line for line in lines)
    )
    done = run(sys.executable, SCRIPTS / "known_bad.py", lock)
    assert done.returncode == 1, done.stdout
    assert "requirements.lock: flask==3.1.0 is CVE-2025-47278" in done.stdout


def test_the_shipped_locks_and_this_python_pass():
    done = run(sys.executable, SCRIPTS / "known_bad.py")
    assert done.returncode == 0, done.stdout
    assert "0 known-bad in requirements.lock, requirements-test.lock" in done.stdout


def test_a_python_with_cve_2024_6923_fails_the_check(tmp_path: Path):
    unfixed = need(builds_where(unfixed=True), "Python without the CVE-2024-6923 fix")[-1]
    # That interpreter has no packaging of its own: lend it this one (pure Python).
    (tmp_path / "packaging").symlink_to(Path(packaging.__file__).parent)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = run(unfixed, SCRIPTS / "known_bad.py", env=env)
    assert done.returncode == 1, done.stdout
    assert "CVE-2024-6923 (fail): present" in done.stdout


# The interpreter probe


@pytest.mark.parametrize("python", builds_where(unfixed=True) or [None], ids=str)
def test_the_probe_reproduces_cve_2024_6923_on_unfixed_releases(python):
    need([python] if python else [], "Python without the CVE-2024-6923 fix")
    done = run(python, SCRIPTS / "python_check.py")
    assert done.returncode == 1, done.stdout
    assert "CVE-2024-6923 (fail): present" in done.stdout


def test_the_probe_passes_on_a_fixed_release():
    fixed = need(builds_where(unfixed=False), "Python with the CVE-2024-6923 fix")[-1]
    done = run(fixed, SCRIPTS / "python_check.py")
    assert done.returncode == 0, done.stdout
    assert "CVE-2024-6923 (fail): absent (fixed upstream" in done.stdout


def test_the_version_only_explains_a_backported_fix():
    says = python_check.upstream_says_vulnerable
    fixed_in = CVE_2024_6923["fixed_in"]
    assert says((3, 11, 2), fixed_in) and says((3, 12, 4), fixed_in) and says((3, 10, 14), fixed_in)
    assert not says((3, 11, 10), fixed_in) and not says((3, 13, 0), fixed_in)
    assert not says((3, 14, 1), fixed_in)


# The Python that scripts/test and scripts/serve pick


def machine(tmp_path: Path, on_path: dict[str, Path], in_pyenv: list[Path]) -> dict[str, str]:
    """An environment whose PATH holds only `on_path` and whose pyenv holds only `in_pyenv`."""
    bin_dir, versions = tmp_path / "bin", tmp_path / "pyenv" / "versions"
    bin_dir.mkdir()
    versions.mkdir(parents=True)
    for name, target in on_path.items():
        (bin_dir / name).symlink_to(target)
    for python in in_pyenv:
        (versions / python.parent.parent.name).symlink_to(python.parent.parent)
    return {"PATH": str(bin_dir), "PYENV_ROOT": str(tmp_path / "pyenv"), "HOME": str(tmp_path)}


def test_pick_takes_the_newest_python_that_passes(tmp_path: Path):
    unfixed = need(builds_where(unfixed=True), "Python without the CVE-2024-6923 fix")
    fixed = need(builds_where(unfixed=False), "Python with the CVE-2024-6923 fix")[-1]
    on_path = {"python3": unfixed[0]}
    if DEBIAN_311.exists():  # an older one that passes too (a backported fix)
        on_path["python3.11"] = DEBIAN_311
    env = machine(tmp_path, on_path, [*unfixed, fixed])
    done = run(unfixed[0], SCRIPTS / "pick_python.py", env=env)
    assert done.stdout.strip() == str(fixed)
    assert f"({fixed}): the newest supported" in done.stderr


def test_pick_passes_over_a_newer_python_for_one_with_a_backported_fix(tmp_path: Path):
    if not DEBIAN_311.exists():
        pytest.skip("no Debian python3.11 (its security updates carry the CVE-2024-6923 fix)")
    newer = [p for p in builds_where(unfixed=True) if p.name.startswith("python3.12")]
    newer = need(newer, "unfixed Python 3.12")[-1]
    env = machine(tmp_path, {"python3": DEBIAN_311, "python3.11": DEBIAN_311}, [newer])
    done = run(DEBIAN_311, SCRIPTS / "pick_python.py", env=env)
    assert done.stdout.strip() == str(DEBIAN_311.resolve())
    assert "passed over Python 3.12" in done.stderr and "CVE-2024-6923" in done.stderr


def test_pick_falls_back_to_python3_with_a_warning_naming_the_cve(tmp_path: Path):
    unfixed = need(builds_where(unfixed=True), "Python without the CVE-2024-6923 fix")
    env = machine(tmp_path, {"python3": unfixed[0]}, unfixed)
    done = run(unfixed[0], SCRIPTS / "pick_python.py", env=env)
    assert done.returncode == 0
    assert done.stdout.strip() == str(unfixed[0])
    assert "WARNING: no Python here passes" in done.stderr
    assert "CVE-2024-6923 (email header injection through RFC 2047 encoded words)" in done.stderr


# The locks against pyproject.toml

LOCK_CHECK = SCRIPTS / "lock_check.py"


def project(root: Path, runtime_lock: str, test_lock: str) -> Path:
    (root / "pyproject.toml").write_text(
        '[project]\nname = "x"\nversion = "0"\ndependencies = ["flask>=3.1.3"]\n'
        '[project.optional-dependencies]\ntest = ["pytest>=9.0.3"]\n'
    )
    (root / "requirements.lock").write_text(runtime_lock)
    (root / "requirements-test.lock").write_text(test_lock)
    return root


def test_the_shipped_locks_match_pyproject():
    done = run(sys.executable, LOCK_CHECK)
    assert done.returncode == 0, done.stdout


def test_a_lock_that_matches_pyproject_passes(tmp_path: Path):
    root = project(tmp_path, "flask==3.1.3 \\\n", "flask==3.1.3 \\\npytest==9.2.0 \\\n")
    assert run(sys.executable, LOCK_CHECK, root).returncode == 0


def test_a_pin_outside_the_range_fails(tmp_path: Path):
    root = project(tmp_path, "flask==3.1.2 \\\n", "flask==3.1.3 \\\npytest==9.2.0 \\\n")
    done = run(sys.executable, LOCK_CHECK, root)
    assert done.returncode == 1
    assert "requirements.lock: flask==3.1.2 is outside flask>=3.1.3" in done.stdout


def test_a_requirement_missing_from_a_lock_fails(tmp_path: Path):
    root = project(tmp_path, "flask==3.1.3 \\\n", "flask==3.1.3 \\\n")
    done = run(sys.executable, LOCK_CHECK, root)
    assert done.returncode == 1
    assert "requirements-test.lock: pytest is not pinned" in done.stdout


# scripts/ensure-venv, in a copy of the repository that installs nothing but itself


@pytest.mark.slow
def test_ensure_venv_rebuilds_a_venv_made_with_a_vulnerable_python(tmp_path: Path):
    unfixed = need(builds_where(unfixed=True), "Python without the CVE-2024-6923 fix")[-1]
    fixed = need(builds_where(unfixed=False), "Python with the CVE-2024-6923 fix")[-1]
    repo = tmp_path / "repo"
    for name in (
        "scripts/ensure-venv",
        "scripts/pick_python.py",
        "scripts/python_check.py",
        "security/known-bad.toml",
    ):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_bytes((ROOT / name).read_bytes())
    (repo / "scripts/ensure-venv").chmod(0o755)
    (repo / "pyproject.toml").write_text(
        '[project]\nname = "x"\nversion = "0"\n[tool.setuptools]\npy-modules = []\n'
    )
    lock = repo / "requirements.lock"
    lock.write_text("# nothing pinned\n")
    subprocess.run([str(unfixed), "-m", "venv", "--without-pip", str(repo / ".venv")], check=True)
    env = {**machine(tmp_path, {"python3": unfixed}, [unfixed, fixed]), "PIP_QUIET": "1"}
    env = {**os.environ, **env, "PATH": f"{env['PATH']}:/usr/bin:/bin"}

    done = run(repo / "scripts/ensure-venv", "requirements.lock", env=env)
    assert done.returncode == 0, done.stderr
    assert "rebuilding it" in done.stderr
    assert (repo / ".venv/bin/python").resolve() == fixed
    stamp = repo / ".venv/.installed-requirements"
    assert "requirements.lock" in stamp.read_text()

    # A changed lock is installed again (the stamp follows it); the .venv is kept.
    before = stamp.read_text()
    lock.write_text("# still nothing pinned\n")
    done = run(repo / "scripts/ensure-venv", "requirements.lock", env=env)
    assert done.returncode == 0, done.stderr
    assert "rebuilding" not in done.stderr
    assert stamp.read_text() != before
