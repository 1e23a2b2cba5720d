"""`leadmagnet check dns`: the records that decide whether mail from the sending domain
reaches inboxes (MX, SPF, DKIM, DMARC), looked up and judged, one line each."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parseaddr

import dns.exception
import dns.name
import dns.resolver
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
    load_pem_private_key,
)

from ..core.dkim_key import DkimKey
from .context import Context

FAILING = ("missing", "mismatch")
# What each relay's own documentation asks SPF to include, found by EMAIL_URL's host.
RELAYS = (
    ("amazonaws.com", "amazonses.com", "Amazon SES"),
    ("postmarkapp.com", "spf.mtasv.net", "Postmark"),
    ("mailgun.org", "mailgun.org", "Mailgun"),
    ("sendgrid.net", "sendgrid.net", "SendGrid"),
)
SPF_LOOKUPS = 10  # RFC 7208 §4.6.4: receivers give up after this many


class NoDns(Exception):
    """The resolver answers nothing at all: not a verdict on the records."""


@dataclass(frozen=True)
class Finding:
    record: str  # MX, SPF, DKIM or DMARC
    status: str  # ok, found (judge it yourself), missing, mismatch, skipped
    detail: str


def run(ctx: Context, domain: str | None, nameserver: str | None, echo: Callable[..., None]) -> int:
    """Print one line per record; 0 when none is missing or wrong, 1 when one is, 2 without
    DNS."""
    settings = ctx.settings
    domain = (domain or parseaddr(ctx.sender)[1].rpartition("@")[2]).lower()
    try:
        resolver = make_resolver(nameserver)
        findings = [
            check_mx(resolver, domain),
            check_spf(resolver, domain, settings.email_url.host),
            check_dkim(resolver, domain, settings.dkim),
            check_dmarc(resolver, domain),
        ]
    except NoDns as exc:
        echo(
            f"leadmagnet: no DNS here, nothing checked ({exc}): run it on a machine that can "
            f"look up {domain}, or name a DNS server with --nameserver",
            err=True,
        )
        return 2
    echo(f"sending domain: {domain}")
    for found in findings:
        echo(f"{found.record:<6} {found.status:<9} {found.detail}")
    return 1 if any(f.status in FAILING for f in findings) else 0


def make_resolver(nameserver: str | None) -> dns.resolver.Resolver:
    if nameserver is None:
        try:
            resolver = dns.resolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            raise NoDns("this machine names no DNS server") from None
    else:
        # ADDRESS or ADDRESS:PORT (an IPv6 address alone has more than one colon).
        host, _, port = nameserver.rpartition(":") if nameserver.count(":") == 1 else ("", "", "")
        resolver = dns.resolver.Resolver(configure=False)
        try:
            resolver.nameservers = [host or nameserver]
        except ValueError:
            raise NoDns(f"--nameserver {nameserver} is not an IP address") from None
        resolver.port = int(port) if port.isdigit() else 53
    resolver.timeout = 2
    resolver.lifetime = 5
    return resolver


def _answers(resolver: dns.resolver.Resolver, name: str, kind: str) -> list:
    try:
        return list(resolver.resolve(name, kind))
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.resolver.NoNameservers, dns.exception.Timeout) as exc:
        raise NoDns(type(exc).__name__) from None


def txt(resolver: dns.resolver.Resolver, name: str, prefix: str) -> list[str]:
    """The TXT records at `name` that start with `prefix` (`v=spf1`, ...), each joined from
    its 255-byte strings."""
    found = _answers(resolver, name, "TXT")
    records = [b"".join(r.strings).decode("utf-8", "replace") for r in found]
    return [r for r in records if r.lower().startswith(prefix.lower())]


def check_mx(resolver: dns.resolver.Resolver, domain: str) -> Finding:
    found = sorted(_answers(resolver, domain, "MX"), key=lambda r: r.preference)
    if any(r.exchange == dns.name.root for r in found):
        return Finding(
            "MX",
            "mismatch",
            f"{domain} has a null MX (takes no mail): replies and bounces are lost",
        )
    hosts = [r.exchange.to_text(omit_final_dot=True) for r in found]
    if not hosts:
        return Finding(
            "MX",
            "missing",
            f"{domain} has no MX record: replies and bounces have nowhere to go; "
            "publish your mailbox provider's",
        )
    listed = (f"{r.preference} {host}" for r, host in zip(found, hosts, strict=True))
    return Finding("MX", "ok", ", ".join(listed))


def check_spf(resolver: dns.resolver.Resolver, domain: str, relay_host: str) -> Finding:
    records = txt(resolver, domain, "v=spf1")
    relay = next((r for r in RELAYS if relay_host.lower().endswith(r[0])), None)
    wanted = f"v=spf1 include:{relay[1]} ~all" if relay else "v=spf1 mx ~all"
    if not records:
        return Finding("SPF", "missing", f'publish TXT at {domain}: "{wanted}"')
    if len(records) > 1:
        return Finding(
            "SPF",
            "mismatch",
            f"{len(records)} SPF records at {domain}: receivers treat that as an error; "
            "merge them into one",
        )
    if relay is None:
        where = f"the servers of {relay_host}" if relay_host else "the servers you send through"
        return Finding("SPF", "found", f"{records[0]} (check that it covers {where})")
    if _includes(resolver, records[0], relay[1], [SPF_LOOKUPS]):
        return Finding("SPF", "ok", records[0])
    return Finding(
        "SPF",
        "mismatch",
        f"{records[0]} does not include:{relay[1]}, which {relay[2]} asks for: "
        "add it before the final ~all",
    )


def _includes(resolver: dns.resolver.Resolver, record: str, target: str, budget: list[int]) -> bool:
    """Whether the SPF record reaches include:<target>, following include: and redirect= as a
    receiver would, within its 10 lookups."""
    for term in record.split()[1:]:
        term = term.lstrip("+-~?").lower()
        mechanism, _, name = term.partition("=" if term.startswith("redirect=") else ":")
        if mechanism not in ("include", "redirect"):
            continue
        if name == target:
            return True
        budget[0] -= 1
        if budget[0] < 0:
            return False
        if any(_includes(resolver, r, target, budget) for r in txt(resolver, name, "v=spf1")):
            return True
    return False


def check_dkim(resolver: dns.resolver.Resolver, domain: str, key: DkimKey | None) -> Finding:
    if key is None:
        return Finding(
            "DKIM",
            "skipped",
            "DKIM_DOMAIN, DKIM_SELECTOR and DKIM_PRIVATE_KEY are unset: the service does not "
            "sign, so your relay must sign with your domain (Gmail and Yahoo require DKIM)",
        )
    name = f"{key.selector}._domainkey.{key.domain}"
    ours = public_key_base64(key)
    publish = f'publish TXT at {name}: "v=DKIM1; k=rsa; p={ours}"'
    if not _aligned(key.domain, domain):
        return Finding(
            "DKIM",
            "mismatch",
            f"DKIM_DOMAIN {key.domain} is neither {domain} nor a parent or subdomain of it: "
            "DMARC will not count the signature",
        )
    records = [r for r in txt(resolver, name, "") if "p=" in r]  # v=DKIM1 is optional
    if not records:
        return Finding("DKIM", "missing", publish)
    published = dict(_tags(records[0])).get("p", "")
    if not _same_key(published, ours):
        return Finding(
            "DKIM", "mismatch", f"the key at {name} is not DKIM_PRIVATE_KEY's; {publish}"
        )
    return Finding("DKIM", "ok", f"{name} holds the public key of DKIM_PRIVATE_KEY")


def _aligned(signing: str, sending: str) -> bool:
    """DMARC's relaxed alignment, near enough without the public suffix list: one domain is
    the other or under it."""
    return signing == sending or sending.endswith(f".{signing}") or signing.endswith(f".{sending}")


def public_key_base64(key: DkimKey) -> str:
    """The p= value for DNS: the public half of the key, DER SubjectPublicKeyInfo, base64."""
    private = load_pem_private_key(key.private_key, password=None)
    der = private.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode("ascii")


def _tags(record: str) -> list[tuple[str, str]]:
    pairs = (part.partition("=") for part in record.split(";") if "=" in part)
    return [(name.strip().lower(), "".join(value.split())) for name, _, value in pairs]


def _same_key(published: str, ours: str) -> bool:
    try:
        theirs = load_der_public_key(base64.b64decode(published, validate=True))
    except (ValueError, binascii.Error):
        return False  # empty (revoked) or not a key
    mine = load_der_public_key(base64.b64decode(ours))
    return theirs.public_numbers() == mine.public_numbers()  # type: ignore[union-attr]


def check_dmarc(resolver: dns.resolver.Resolver, domain: str) -> Finding:
    records = txt(resolver, f"_dmarc.{domain}", "v=DMARC1")
    if not records:
        return Finding(
            "DMARC",
            "missing",
            f'publish TXT at _dmarc.{domain}: "v=DMARC1; p=none; rua=mailto:dmarc@{domain}"',
        )
    if len(records) > 1:
        return Finding(
            "DMARC",
            "mismatch",
            f"{len(records)} DMARC records at _dmarc.{domain}: receivers ignore them all; keep one",
        )
    return Finding("DMARC", "ok", records[0])
