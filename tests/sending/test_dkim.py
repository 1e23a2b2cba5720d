"""DKIM: the bytes that reach the SMTP server (or the outbox) verify against the public key."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import dkim
import pytest

from service.core.settings import Settings, SettingsError
from tests.conftest import make_app
from tests.helpers import api_signup, dispatch_inline

DOMAIN = "insideoutstrength.example"
SELECTOR = "lm2026"


def openssl(*args: str, data: bytes | None = None) -> bytes:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    return subprocess.run(["openssl", *args], input=data, capture_output=True, check=True).stdout


@pytest.fixture(scope="module")
def key_pair() -> tuple[bytes, bytes]:
    """(private PEM, the TXT record a receiver would find at selector._domainkey.domain)."""
    private = openssl("genrsa", "2048")
    public = openssl("rsa", "-pubout", data=private).decode()
    base64_key = "".join(line for line in public.splitlines() if "-----" not in line)
    return private, f"v=DKIM1; k=rsa; p={base64_key}".encode()


@pytest.fixture
def key_file(tmp_path: Path, key_pair) -> Path:
    path = tmp_path / "dkim.pem"
    path.write_bytes(key_pair[0])
    return path


def dns_for(record: bytes):
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == f"{SELECTOR}._domainkey.{DOMAIN}.".encode() else None

    return lookup


def dkim_env(key: str) -> dict[str, str]:
    return {"DKIM_DOMAIN": DOMAIN, "DKIM_SELECTOR": SELECTOR, "DKIM_PRIVATE_KEY": key}


def signed_headers(data: bytes) -> list[str]:
    signature = data.split(b"\r\n\r\n", 1)[0].decode()
    match = re.search(r"\bh=([^;]+);", re.sub(r"\s+", "", signature))
    assert match, "no h= tag in the DKIM-Signature"
    return match.group(1).lower().split(":")


def test_mail_sent_over_smtp_verifies(env, smtpd, key_file, key_pair):
    app = make_app({**env, "EMAIL_URL": smtpd.url, **dkim_env(str(key_file))})
    assert api_signup(app.test_client(), "zoe@example.com", first_name="Zoë").status_code == 202
    assert dispatch_inline(app) == ["sent"]
    [received] = smtpd.received
    data = received.data
    assert data.startswith(b"DKIM-Signature: ")
    assert dkim.verify(data, dnsfunc=dns_for(key_pair[1]))

    headers = signed_headers(data)
    for name in ("from", "to", "subject", "date", "message-id"):
        assert name in headers
    assert "list-unsubscribe" in headers and "list-unsubscribe-post" in headers  # RFC 8058 §4
    signature = received.message["DKIM-Signature"]
    assert f"d={DOMAIN}" in signature and f"s={SELECTOR}" in signature
    assert "c=relaxed/relaxed" in signature and "a=rsa-sha256" in signature

    tampered = re.sub(rb"(?m)^Subject: [^\r\n]*", b"Subject: You won a prize", data, count=1)
    assert tampered != data
    assert not dkim.verify(tampered, dnsfunc=dns_for(key_pair[1]))
    unsubscribe_swapped = data.replace(b"/unsubscribe/", b"/unsubscribe-x/", 1)
    assert not dkim.verify(unsubscribe_swapped, dnsfunc=dns_for(key_pair[1]))


def test_the_outbox_file_is_signed_too(env, outbox, key_pair):
    app = make_app({**env, **dkim_env(key_pair[0].decode())})  # the PEM itself, not a path
    api_signup(app.test_client(), "sam@example.com", first_name="Sam")
    assert dispatch_inline(app) == ["sent"]
    [path] = outbox.glob("*.eml")
    assert dkim.verify(path.read_bytes(), dnsfunc=dns_for(key_pair[1]))


def test_an_internationalized_address_is_signed_as_sent(env, smtpd, key_file, key_pair):
    """SMTPUTF8: raw UTF-8 headers; the signature covers the bytes as they went out."""
    app = make_app({**env, "EMAIL_URL": smtpd.url, **dkim_env(str(key_file))})
    assert api_signup(app.test_client(), "zoë@example.com", first_name="Zoë").status_code == 202
    assert dispatch_inline(app) == ["sent"]
    [received] = smtpd.received
    assert "zoë@example.com".encode() in received.data
    assert dkim.verify(received.data, dnsfunc=dns_for(key_pair[1]))


def test_without_dkim_settings_nothing_is_signed(env, smtpd):
    app = make_app({**env, "EMAIL_URL": smtpd.url})
    api_signup(app.test_client(), "plain@example.com")
    dispatch_inline(app)
    assert b"DKIM-Signature" not in smtpd.received[0].data


@pytest.mark.parametrize("present", [("DKIM_DOMAIN",), ("DKIM_DOMAIN", "DKIM_PRIVATE_KEY")])
def test_a_partial_dkim_setting_stops_the_start(tmp_path, key_file, present):
    full = dkim_env(str(key_file))
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"INSTANCE_PATH": str(tmp_path), **{k: full[k] for k in present}})
    message = str(caught.value)
    assert "DKIM_SELECTOR" in message and "\n" not in message


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("/nonexistent/dkim.pem", "neither a PEM key nor a readable file"),
        ("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----", "RSA private"),
    ],
)
def test_an_unreadable_key_stops_the_start(tmp_path, key, problem):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"INSTANCE_PATH": str(tmp_path), **dkim_env(key)})
    assert caught.value.name == "DKIM_PRIVATE_KEY"
    assert problem in str(caught.value) and "\n" not in str(caught.value)


def test_a_short_key_is_refused(tmp_path):
    weak = openssl("genrsa", "512")
    with pytest.raises(SettingsError, match="1024 bits"):
        Settings.from_env({"INSTANCE_PATH": str(tmp_path), **dkim_env(weak.decode())})


def test_a_one_line_pem_with_escaped_newlines_is_read(tmp_path, key_pair):
    one_line = key_pair[0].decode().strip().replace("\n", "\\n")
    settings = Settings.from_env({"INSTANCE_PATH": str(tmp_path), **dkim_env(one_line)})
    assert settings.dkim and settings.dkim.private_key == key_pair[0]
    assert "PRIVATE" not in repr(settings.dkim)  # never printed with the settings
