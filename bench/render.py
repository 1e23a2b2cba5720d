"""bench/render: microseconds per message, our renderer against a plain Jinja render.

Run: .venv/bin/python -m bench.render
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime

from jinja2 import Environment, FileSystemLoader, select_autoescape

from bench.common import (
    header,
    interleaved,
    peak_rss_mb,
    verdict,
)
from service import create_app
from service.content.rendering import render_email
from service.sending.compose import context
from service.sending.context import for_app
from service.sending.message import build_message
from service.sending.sequence_check import sample_subscriber
from service.sending.transport import SMTP_POLICY

GOAL = 2.5


def main() -> None:
    instance = tempfile.mkdtemp(prefix="bench-render-")
    app = create_app({"INSTANCE_PATH": instance, "PUBLIC_URL": "https://example.org"})
    with app.app_context():
        made = for_app(app)
        templates = made.settings.templates_dir
        step = made.content.steps[1]
        ctx = context(made, sample_subscriber(), step.template, step.preheader)
    plain = Environment(
        loader=FileSystemLoader(str(templates)), autoescape=select_autoescape(["html"])
    )

    def baseline() -> None:
        for part in ("subject.txt", "body.txt", "body.html"):
            plain.get_template(f"{step.template}/{part}").render(ctx)

    def ours() -> None:
        render_email(step.template, ctx, templates)

    def ours_with_mime() -> None:
        rendered = render_email(step.template, ctx, templates)
        build_message(
            rendered,
            mail_from=made.sender,
            to_address="sam@example.com",
            to_name="Sam",
            message_id="<1@example.org>",
            unsubscribe_url=ctx["unsubscribe_url"],
            date=datetime.now(UTC),
        ).as_bytes(policy=SMTP_POLICY)

    calls = int(os.environ.get("BENCH_CALLS", "300"))
    header("bench/render")
    ours_us, base_us = interleaved(ours, baseline, calls)
    full_us, _ = interleaved(ours_with_mime, baseline, calls, rounds=3)
    ratio = ours_us / base_us
    print(f"plain Jinja render (3 templates):     {base_us:8.0f} us/message")
    print(f"our renderer (Jinja + css-inline):    {ours_us:8.0f} us/message")
    print(f"our renderer + MIME + as_bytes():     {full_us:8.0f} us/message")
    print(f"ratio ours / plain Jinja: {ratio:.2f}x  ({verdict(ratio, GOAL, at_least=False)})")
    print(f"peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
