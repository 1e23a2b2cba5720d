"""The newcomer's first hour: a fresh copy of the repository, and only the README's commands.

The copy runs on the suite's own virtualenv (`LEADMAGNET_VENV`, which the scripts honour
instead of building `.venv`: a fresh install would cost minutes), with PYTHONPATH pointing at
the copy, so the code, scripts and templates run are the copy's own.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import stat
import subprocess
import urllib.parse
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.procs import BIN, Browser, clean_env, http_ok, start, stop, wait_until
from tests.test_compose import ROOT

pytestmark = pytest.mark.slow
README = (ROOT / "README.md").read_text()
OWNER = ("you@example.com", "a long owner passphrase 42")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def fresh_copy(folder: Path) -> Path:
    """The repository's tracked files as they are in the work tree, nothing else: no .venv,
    no instance."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True
    ).stdout
    copy = folder / "leadmagnet"
    for name in filter(None, listed.decode().split("\0")):
        source, target = ROOT / name, copy / name
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
            target.chmod(source.stat().st_mode)
    return copy


def readme_says(command: str) -> str:
    """The test runs only what the README tells a newcomer to run."""
    assert command in README, f"the README does not say {command!r}"
    return command


def run(command: str, cwd: Path, env: dict[str, str], stdin: str = ""):
    return subprocess.run(
        command,
        shell=True,
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def leadmagnet_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("leadmagnet: ")]


def test_a_newcomer_follows_the_readme(tmp_path):
    copy = fresh_copy(tmp_path)
    env = clean_env(LEADMAGNET_VENV=str(BIN.parent), PYTHONPATH=str(copy))
    port = free_port()
    serve = readme_says("./scripts/serve")
    proc = start(["bash", "-c", f"{serve} --port {port}"], env, copy, tmp_path / "serve.log")
    base = f"http://127.0.0.1:{port}"
    try:
        if not wait_until(lambda: http_ok(f"{base}/healthz"), 60, 0.2):
            pytest.fail("serve did not start:\n" + (tmp_path / "serve.log").read_text()[-3000:])
        instance = copy / "instance"
        outbox = instance / "outbox"
        assert stat.S_IMODE(outbox.stat().st_mode) == 0o700, "the outbox is there from the start"
        assert f"serving {base}/" in (tmp_path / "serve.log").read_text()

        browser = Browser(base)
        assert browser.request("GET", "/favicon.ico").status == 200
        page = browser.request("GET", "/").read().decode()
        assert "Free 7-page guide" in page
        answer = browser.submit_signup(email="ann@example.com", first_name="Ann", consent="yes")
        assert answer.status == 303
        [guide] = wait_until(lambda: list(outbox.glob("*.eml")), 5, 0.05)
        assert re.fullmatch(r"\d{8}T\d{6}\.\d{3}Z-guide-[\w.-]+\.eml", guide.name)
        msg = message_from_bytes(guide.read_bytes(), policy=policy.default)
        text = msg.get_body(("plain",)).get_content()
        assert "(PDF, 7 pages)" in text
        assert "one click on the next page" in text

        owner_and_outbox(copy, env, browser, base)
        the_cli_finds_the_instance(copy, env, tmp_path)
        a_second_serve_is_refused(copy, env, port, proc.pid)
    finally:
        stop(proc, signal.SIGINT)  # Ctrl-C
    assert proc.returncode == 0
    with (copy / "instance" / "serve.lock").open() as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # let go when serve stopped


def owner_and_outbox(copy: Path, env: dict[str, str], browser: Browser, base: str) -> None:
    create = readme_says("./scripts/leadmagnet admin create you@example.com")
    done = run(f"{create} --password-stdin", copy, env, stdin=OWNER[1] + "\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "created owner you@example.com: sign in at /login"
    token = CSRF.search(browser.request("GET", "/login").read().decode()).group(1)
    body = urllib.parse.urlencode(
        {"csrf_token": token, "email": OWNER[0], "password": OWNER[1]}
    ).encode()
    signed_in = browser.request(
        "POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert signed_in.status == 303
    assert browser.request("GET", "/admin/").status == 200
    listing = browser.request("GET", "/outbox").read().decode()
    assert "Ann, your free guide is here" in listing


def the_cli_finds_the_instance(copy: Path, env: dict[str, str], tmp_path: Path) -> None:
    show = readme_says("./scripts/leadmagnet subscribers show ann@example.com")
    done = run(show, copy, env)
    assert done.returncode == 0, done.stderr
    person = json.loads(done.stdout)
    assert person["status"] == "active"
    first = person["emails"][0]
    assert (first["step"], first["status"]) == ("guide", "sent")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # The checkout's wrapper, from another folder, still works on serve's instance...
    wrapped = run(f"{copy}/scripts/leadmagnet admin list", elsewhere, env)
    assert wrapped.returncode == 0 and wrapped.stdout.startswith("you@example.com\t")
    # ...while the installed command works where it is run: here, no instance, and it says so.
    assert readme_says(".venv/bin/leadmagnet")
    bare = run(f"{BIN}/leadmagnet admin list", elsewhere, env)
    assert bare.returncode == 1
    assert leadmagnet_lines(bare.stderr) == [
        f"leadmagnet: no instance in {elsewhere}/instance; run from the folder where you ran "
        "serve, or set INSTANCE_PATH"
    ]
    assert list(elsewhere.iterdir()) == [], "it made no instance there"


def a_second_serve_is_refused(copy: Path, env: dict[str, str], port: int, pid: int) -> None:
    serve = readme_says("./scripts/serve --port")
    same_port = run(f"{serve} {port}", copy, env)
    assert same_port.returncode == 1
    assert leadmagnet_lines(same_port.stderr) == [
        f"leadmagnet: port {port} is in use; choose another with --port"
    ]
    other_port = run(f"{serve} {free_port()}", copy, env)
    assert other_port.returncode == 1
    assert leadmagnet_lines(other_port.stderr) == [
        f"leadmagnet: another serve (pid {pid}) is running on the instance folder "
        f"{copy / 'instance'}; stop it first, or give this one its own INSTANCE_PATH"
    ]
    for refused in (same_port, other_port):
        assert "serving" not in refused.stdout
    assert os.path.exists(copy / "instance" / "serve.lock")
