"""Security headers, in one place: a few named policies, each blueprint answering under
one of them, and one hook that writes the chosen policy's headers on every response."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import Flask, request
from werkzeug.wrappers import Response

# No inline script or style anywhere: every page loads site.css and its scripts as files.
CSP = (
    "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'; img-src 'self' data:; style-src 'self'"
)
# The sign-in page embeds nothing and submits only here; nothing may frame it.
LOGIN_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# Email HTML shown in sandboxed srcdoc frames, which inherit the page's policy: inline
# styles render, nothing runs, nothing loads from elsewhere, nothing is submitted.
PREVIEW_CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# The owner's pages: the previews' policy, and our own script files (the editor's); never
# an inline one, and the preview frames' empty sandbox runs none at all.
ADMIN_CSP = PREVIEW_CSP.replace("default-src 'none';", "default-src 'none'; script-src 'self';")
OUTBOX_CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)
HSTS = "max-age=31536000"


@dataclass(frozen=True)
class Policy:
    csp: str = CSP
    # Pages reached through a token in their URL send no Referer: the token must not leave.
    referrer: str = "same-origin"
    no_store: bool = False  # pages of one signed-in owner, or holding everyone's links
    extra: dict[str, str] = field(default_factory=dict)


POLICIES = {
    "default": Policy(),
    "token_pages": Policy(referrer="no-referrer"),
    # The click redirect: each hit must reach us (no cache), and its token go no further.
    "redirects": Policy(referrer="no-referrer", no_store=True),
    "login": Policy(csp=LOGIN_CSP, no_store=True),
    "admin": Policy(csp=ADMIN_CSP, no_store=True),
    "outbox": Policy(csp=OUTBOX_CSP, referrer="no-referrer", no_store=True),
    # Pages on other sites load the script: a blog with Cross-Origin-Embedder-Policy too.
    "embed": Policy(extra={"Cross-Origin-Resource-Policy": "cross-origin"}),
}
# The policy of each blueprint; any other answer (errors before routing too) gets "default".
BLUEPRINTS = {
    "links": "token_pages",
    "clicks": "redirects",
    "login": "login",
    "admin": "admin",
    "outbox": "outbox",
    "embed": "embed",
}


def policy_for(blueprint: str | None) -> Policy:
    return POLICIES[BLUEPRINTS.get(blueprint or "", "default")]


def headers_for(response: Response, policy: Policy) -> dict[str, str]:
    found = {
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": policy.referrer,
        **policy.extra,
    }
    # The browser's own PDF viewer shows the guide under the response's policy, and
    # object-src 'none' can keep it from showing anything: a PDF needs no policy of ours.
    if response.mimetype != "application/pdf":
        found["Content-Security-Policy"] = policy.csp
    if policy.no_store:
        found["Cache-Control"] = "no-store"
    # Only over HTTPS (as seen through TRUSTED_PROXIES): over plain HTTP it means nothing,
    # and sent from a development server it would pin the browser to HTTPS for a year.
    if request.is_secure:
        found["Strict-Transport-Security"] = HSTS
    return found


def register(app: Flask) -> None:
    @app.after_request
    def secure(response: Response) -> Response:
        response.headers.update(headers_for(response, policy_for(request.blueprint)))
        return response
