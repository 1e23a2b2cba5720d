"""`leadmagnet check dns` against a DNS server of the test's own: MX, SPF (with the relay's
include), DKIM (the published key against DKIM_PRIVATE_KEY) and DMARC, one line each."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from service.cli import cli
from tests.conftest import SECRET
from tests.dns_server import FixedDnsServer, txt_value

DOMAIN = "news.example.com"
SES = "smtp+starttls://AKIAEXAMPLE:secret@email-smtp.us-east-1.amazonaws.com:587"


def new_key() -> tuple[str, str]:
    """(private key PEM, the p= value of its public key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    der = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    import base64

    return pem, base64.b64encode(der).decode()


KEY, PUBLIC = new_key()
OTHER_KEY, OTHER_PUBLIC = new_key()
GOOD = {
    (DOMAIN, "MX"): ["10 inbound.mail.example.net."],
    (DOMAIN, "TXT"): [txt_value("v=spf1 include:amazonses.com ~all"), txt_value("site-verify=1")],
    (f"lm1._domainkey.{DOMAIN}", "TXT"): [txt_value(f"v=DKIM1; k=rsa; p={PUBLIC}")],
    (f"_dmarc.{DOMAIN}", "TXT"): [txt_value(f"v=DMARC1; p=none; rua=mailto:d@{DOMAIN}")],
}


def check(tmp_path, nameserver: str, *extra: str, **settings: str | None):
    env = {
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
        "REDIS_URL": None,
        "SECRET_KEY": SECRET,
        "MAIL_FROM": f"Coach <coach@{DOMAIN}>",
        "EMAIL_URL": SES,
        "DKIM_DOMAIN": DOMAIN,
        "DKIM_SELECTOR": "lm1",
        "DKIM_PRIVATE_KEY": KEY,
        **settings,
    }
    args = ["check", "dns", "--nameserver", nameserver, *extra]
    return CliRunner().invoke(cli, args, env=env)


def lines(result) -> dict[str, tuple[str, str]]:
    found = {}
    for line in result.stdout.splitlines()[1:]:
        record, status, detail = line.split(None, 2)
        found[record] = (status, detail)
    return found


def test_a_domain_set_up_right_passes_every_check(tmp_path):
    with FixedDnsServer(GOOD) as server:
        result = check(tmp_path, server.address)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"sending domain: {DOMAIN}"
    found = lines(result)
    assert {record: status for record, (status, _) in found.items()} == {
        "MX": "ok",
        "SPF": "ok",
        "DKIM": "ok",
        "DMARC": "ok",
    }
    assert found["MX"][1] == "10 inbound.mail.example.net"
    # The DKIM key was long enough to come back in two strings, joined before comparing.
    assert len(f"v=DKIM1; k=rsa; p={PUBLIC}") > 255


def test_every_wrong_record_is_named_with_what_to_publish(tmp_path):
    records = {
        (DOMAIN, "TXT"): [txt_value("v=spf1 include:_spf.google.com ~all")],
        ("_spf.google.com", "TXT"): [txt_value("v=spf1 ip4:192.0.2.0/24 ~all")],
        (f"lm1._domainkey.{DOMAIN}", "TXT"): [txt_value(f"v=DKIM1; k=rsa; p={OTHER_PUBLIC}")],
    }
    with FixedDnsServer(records) as server:
        result = check(tmp_path, server.address)
    assert result.exit_code == 1, result.output
    found = lines(result)
    assert found["MX"][0] == "missing"
    assert found["SPF"] == (
        "mismatch",
        "v=spf1 include:_spf.google.com ~all does not include:amazonses.com, which Amazon SES "
        "asks for: add it before the final ~all",
    )
    assert found["DKIM"][0] == "mismatch"
    assert f'"v=DKIM1; k=rsa; p={PUBLIC}"' in found["DKIM"][1]  # ours, to publish
    assert found["DMARC"] == (
        "missing",
        f'publish TXT at _dmarc.{DOMAIN}: "v=DMARC1; p=none; rua=mailto:dmarc@{DOMAIN}"',
    )


def test_missing_spf_and_dkim_records_say_what_to_publish(tmp_path):
    records = {key: value for key, value in GOOD.items() if key[1] == "MX"}
    records[(f"_dmarc.{DOMAIN}", "TXT")] = GOOD[(f"_dmarc.{DOMAIN}", "TXT")]
    with FixedDnsServer(records) as server:
        result = check(tmp_path, server.address)
    assert result.exit_code == 1
    found = lines(result)
    assert found["SPF"] == (
        "missing",
        f'publish TXT at {DOMAIN}: "v=spf1 include:amazonses.com ~all"',
    )
    assert found["DKIM"] == (
        "missing",
        f'publish TXT at lm1._domainkey.{DOMAIN}: "v=DKIM1; k=rsa; p={PUBLIC}"',
    )


@pytest.mark.parametrize(
    ("relay", "include"),
    [
        ("smtp+starttls://u:p@smtp.postmarkapp.com:587", "spf.mtasv.net"),
        ("smtp+starttls://u:p@smtp.mailgun.org:587", "mailgun.org"),
        ("smtps://apikey:p@smtp.sendgrid.net:465", "sendgrid.net"),
    ],
)
def test_the_include_wanted_follows_the_relay_and_may_sit_behind_another(tmp_path, relay, include):
    records = {
        **GOOD,
        (DOMAIN, "TXT"): [txt_value("v=spf1 include:_spf.example.com -all")],
        ("_spf.example.com", "TXT"): [txt_value("v=spf1 redirect=_relay.example.com")],
        ("_relay.example.com", "TXT"): [txt_value(f"v=spf1 include:{include} ~all")],
    }
    with FixedDnsServer(records) as server:
        result = check(tmp_path, server.address, EMAIL_URL=relay)
    assert lines(result)["SPF"] == ("ok", "v=spf1 include:_spf.example.com -all")
    assert result.exit_code == 0, result.output


def test_a_plain_relay_leaves_the_spf_record_to_the_owner_and_unset_dkim_is_skipped(tmp_path):
    with FixedDnsServer(GOOD) as server:
        result = check(
            tmp_path,
            server.address,
            "--domain",
            DOMAIN,
            EMAIL_URL="smtp://relay.example.net:25",
            MAIL_FROM="Coach <coach@elsewhere.example.org>",
            DKIM_DOMAIN=None,
            DKIM_SELECTOR=None,
            DKIM_PRIVATE_KEY=None,
        )
    assert result.exit_code == 0, result.output
    found = lines(result)
    assert found["SPF"] == (
        "found",
        "v=spf1 include:amazonses.com ~all (check that it covers the servers of relay.example.net)",
    )
    assert found["DKIM"][0] == "skipped" and "relay must sign" in found["DKIM"][1]


def test_without_dns_it_says_so_and_checks_nothing(tmp_path):
    with FixedDnsServer(GOOD, refuse=True) as server:
        result = check(tmp_path, server.address)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("leadmagnet: no DNS here, nothing checked")
