"""Whether this Python has the bugs security/known-bad.toml lists for interpreters (stdlib only).

`python3.X scripts/python_check.py` probes the interpreter that runs it, prints one line per
listed bug and exits 1 when one whose action is "fail" is present, 0 otherwise. A probe
reproduces the bug; the version only explains the result (distributions backport fixes).
"""

from __future__ import annotations

import email
import email.errors
import sys
import tomllib
from collections.abc import Callable
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path
from typing import NamedTuple

KNOWN_BAD = Path(__file__).resolve().parent.parent / "security" / "known-bad.toml"
# What service/transport.py writes with: the SMTP policy, headers kept on one line.
SMTP_POLICY = policy.SMTP.clone(max_line_length=998)
# Fixed interpreters may refuse to write an unsafe header instead (Python 3.11.10 and later).
REFUSED = getattr(email.errors, "HeaderWriteError", ())


def _header_names(data: bytes) -> set[str]:
    head = data.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
    return {
        line.split(b":", 1)[0].decode("ascii", "replace").lower()
        for line in head.split(b"\n")
        if line and not line[:1].isspace()
    }


def encoded_newline_injection() -> bool:
    """CVE-2024-6923: an encoded CR/LF in the To display name or the Subject becomes a header."""
    msg = EmailMessage()
    msg["From"] = "list@example.com"
    msg["To"] = Address("Sam =?utf-8?q?=0D=0ABcc:_to@attacker.example?=", "sam", "example.com")
    msg["Subject"] = "Your guide=?UTF-8?Q?=0A?=Bcc: subject@attacker.example"
    msg.set_content("The guide.\n")
    try:
        data = msg.as_bytes(policy=SMTP_POLICY)
    except REFUSED:
        return False
    return bool(_header_names(data) - {name.lower() for name in msg})


def encoded_word_address_spoof() -> bool:
    """gh-121284: an encoded word holding ", x@y" in a display name turns into more addresses."""
    msg = EmailMessage()
    msg["To"] = Address("=?utf-8?q?Sam=2C_evil=40attacker=2Eexample?=", "sam", "example.com")
    try:
        data = msg.as_bytes(policy=SMTP_POLICY)
    except REFUSED:
        return False
    parsed = email.message_from_bytes(data, policy=policy.default)
    return [a.addr_spec for a in parsed["To"].addresses] != ["sam@example.com"]


PROBES: dict[str, Callable[[], bool]] = {
    "encoded_newline_injection": encoded_newline_injection,
    "encoded_word_address_spoof": encoded_word_address_spoof,
}


class Finding(NamedTuple):
    id: str
    action: str
    present: bool
    line: str


def _release(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def upstream_says_vulnerable(version: tuple[int, ...], fixed_in: list[str]) -> bool:
    """True when this version predates upstream's fix for its minor line (or every listed line)."""
    fixes = {_release(f)[:2]: _release(f) for f in fixed_in}
    line = version[:2]
    if line in fixes:
        return version < fixes[line]
    return line < min(fixes)


def _explain(entry: dict, present: bool, version: tuple[int, ...]) -> str:
    dotted = ".".join(map(str, version))
    fixed = "/".join(entry["fixed_in"])
    old = upstream_says_vulnerable(version, entry["fixed_in"])
    if present:
        why = f"present: {entry['why']}"
        return why if old else f"{why} (although {dotted} should have upstream's fix, {fixed})"
    if old:
        return f"absent: {dotted} predates upstream's fix ({fixed}), the probe passes: backported"
    return f"absent (fixed upstream in {fixed})"


def findings(entries: list[dict]) -> list[Finding]:
    """Run each entry's probe on this interpreter."""
    version = tuple(sys.version_info[:3])
    out = []
    for entry in entries:
        present = PROBES[entry["probe"]]()
        line = f"{entry['id']} ({entry['action']}): {_explain(entry, present, version)}"
        out.append(Finding(entry["id"], entry["action"], present, line))
    return out


def python_entries(path: Path = KNOWN_BAD) -> list[dict]:
    with path.open("rb") as f:
        return tomllib.load(f).get("python", [])


def main() -> int:
    results = findings(python_entries())
    print(f"Python {sys.version.split()[0]} ({sys.executable}):")
    for result in results:
        print(f"  {result.line}")
    return 1 if any(r.present and r.action == "fail" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
