"""The embeddable form: GET /embed.js, and the snippet the dashboard offers to paste."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, render_template, send_from_directory
from flask.typing import ResponseReturnValue

bp = Blueprint("embed", __name__)
STATIC = Path(__file__).resolve().parent.parent / "static"
# Blogs cache the script with their pages; an hour lets a fix reach them the same day.
MAX_AGE = 3600


@bp.get("/embed.js")
def script() -> ResponseReturnValue:
    response = send_from_directory(
        STATIC, "embed.js", mimetype="text/javascript", max_age=MAX_AGE, conditional=True
    )
    response.cache_control.public = True  # its headers: the "embed" policy (security.py)
    return response


def snippet(
    public_url: str, consent_text: str, double_opt_in: bool, magnet_slug: str | None = None
) -> str:
    """The HTML to paste into a blog page: the form, and the script that posts it here.
    `magnet_slug`: the form of that magnet (None: the default magnet's)."""
    thanks = (
        "Thank you! Check your inbox and click the link in our email to get the guide."
        if double_opt_in
        else "Thank you! The guide is on its way to your inbox."
    )
    return render_template(
        "embed_snippet.html",
        public_url=public_url,
        consent_text=consent_text,
        thanks=thanks,
        magnet_slug=magnet_slug,
    ).strip()
