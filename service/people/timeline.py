"""One person's history as a single chronological list, built from records.describe."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

CONSENT_TITLES = {
    "consent": "Consented",
    "withdrawal": "Unsubscribed (consent withdrawn)",
    "confirmation": "Confirmed the address",
}


@dataclass(frozen=True)
class Entry:
    at: datetime
    kind: str  # consent | email | download | click | report
    title: str
    detail: dict = field(default_factory=dict)  # the piece of describe() it comes from


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _consent_title(consent: dict) -> str:
    title = CONSENT_TITLES.get(consent["action"], consent["action"])
    if consent["action"] == "withdrawal" and consent.get("magnet"):
        return f"Stopped the emails about {consent['magnet']} (consent withdrawn)"
    return title


def _email_title(email: dict) -> str:
    what = {"drip": f"Email “{email['step']}”", "resend": "Guide sent again"}.get(
        email["purpose"], "Confirmation email"
    )
    return f"{what}: {email['status']}"


REPORT_TITLES = {
    "complaint": "Marked “{}” as spam",
    "hard_bounce": "“{}” bounced",
    "soft_bounce": "“{}” bounced (soft)",
}


def _click_title(click: dict) -> str:
    if click["automated"]:
        return f"A link in “{click['step']}” opened by a machine ({click['automated']})"
    return f"Clicked a link in “{click['step']}”"


def timeline(described: dict) -> list[Entry]:
    """Consents and withdrawals with their evidence, every email with its delivery attempts,
    the guide downloads and the clicks, oldest first."""
    entries = [
        Entry(_when(c["at"]), c["action"], _consent_title(c), c) for c in described["consents"]
    ]
    for email in described["emails"]:
        # A sent email sits where it left; one not (yet) sent where it is or was due.
        at = _when(email["sent_at"] or email["due_at"])
        entries.append(Entry(at, "email", _email_title(email), email))
        for report in email.get("reports", ()):
            # Where the provider's report came, about the email it names (a late complaint
            # may name an email older than the last one sent).
            title = REPORT_TITLES.get(report["kind"], "A report about “{}”").format(email["step"])
            entries.append(Entry(_when(report["at"]), "report", title, report))
    downloads = described["guide_downloads"]
    if downloads["first_at"]:
        entries.append(Entry(_when(downloads["first_at"]), "download", "Downloaded the guide"))
    if downloads["count"] > 1 and downloads["last_at"] != downloads["first_at"]:
        title = f"Downloaded the guide again ({downloads['count']} downloads in all)"
        entries.append(Entry(_when(downloads["last_at"]), "download", title))
    for click in described.get("clicks", ()):
        entries.append(Entry(_when(click["at"]), "click", _click_title(click), click))
    # sorted() is stable: at equal times, consents come before the email they caused.
    return sorted(entries, key=lambda entry: entry.at)
