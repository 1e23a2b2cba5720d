"""bench/render: microseconds per message, our renderer against a plain Jinja render of the
same three templates, and the MIME bytes after it (our writer, and EmailMessage).

Every call renders the next of all the steps (and the confirmation) for the next of a set of
names, so no input repeats back to back. css-inline runs once per template shape and process:
the first message of each shape is timed apart ("first message").

Run: .venv/bin/python -m bench.render
"""

from __future__ import annotations

import itertools
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from bench.common import header, interleaved, peak_rss_mb, verdict
from service import create_app
from service.content import inlining
from service.content.rendering import RenderedEmail, render_email
from service.sending.compose import context
from service.sending.context import for_app
from service.sending.mime import message_bytes
from service.sending.sequence_check import sample_subscriber

GOAL = 2.5
MIME_GOAL_US = 500
NAMES = ["Sam", "Zoë", "Ann-Marie", "José Luis", "O'Neil", "Björk", "Łukasz", "Mei", "", "Ola"]


SMTP_POLICY = policy.SMTP.clone(max_line_length=998)


def email_message_bytes(rendered: RenderedEmail, **args) -> bytes:
    """The same message through the stdlib's EmailMessage (what the service used before)."""
    msg = EmailMessage()
    msg["From"] = args["mail_from"]
    msg["To"] = Address(args["to_name"] or "", addr_spec=args["to_address"])
    msg["Subject"] = rendered.subject
    msg["Date"] = format_datetime(args["date"])
    msg["Message-ID"] = args["message_id"]
    msg["List-Unsubscribe"] = f"<{args['unsubscribe_url']}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(rendered.text, cte="quoted-printable")
    msg.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
    return msg.as_bytes(policy=SMTP_POLICY)


def contexts(app) -> list[tuple[str, dict]]:
    """(template, context) for every step and the confirmation, for every name."""
    with app.app_context():
        ctx = for_app(app)
        steps = [(step.template, step.preheader) for step in ctx.content.steps]
        return [
            (template, context(ctx, sample_subscriber(name), template, preheader))
            for template, preheader in [*steps, ("confirm", "")]
            for name in NAMES
        ]


def main() -> None:
    app = create_app({"INSTANCE_PATH": tempfile.mkdtemp(), "PUBLIC_URL": "https://example.org"})
    with app.app_context():
        made = for_app(app)
        templates, mail_from = made.settings.templates_dir, made.sender
    cases = contexts(app)
    # The same options as ours (they act when templates compile), without the inlining hooks.
    plain = Environment(
        loader=FileSystemLoader(str(templates)),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    first_us = first_messages(cases, templates)
    baseline_cycle, ours_cycle, writer_cycle, stdlib_cycle = (
        itertools.cycle(cases) for _ in range(4)
    )

    def baseline() -> None:
        template, ctx = next(baseline_cycle)
        for part in ("subject.txt", "body.txt", "body.html"):
            plain.get_template(f"{template}/{part}").render(ctx)

    def ours() -> None:
        template, ctx = next(ours_cycle)
        render_email(template, ctx, templates)

    def mime_args(ctx: dict) -> dict:
        return {
            "mail_from": mail_from,
            "to_address": ctx["email"],
            "to_name": ctx["first_name"] or None,
            "message_id": "<1.2.3@example.org>",
            "unsubscribe_url": ctx["unsubscribe_url"],
            "date": datetime.now(UTC),
        }

    def ours_with_writer() -> None:
        template, ctx = next(writer_cycle)
        message_bytes(render_email(template, ctx, templates), **mime_args(ctx))

    def ours_with_email_message() -> None:
        template, ctx = next(stdlib_cycle)
        email_message_bytes(render_email(template, ctx, templates), **mime_args(ctx))

    calls = int(os.environ.get("BENCH_CALLS", "400"))
    header("bench/render")
    ours_us, base_us = interleaved(ours, baseline, calls)
    writer_us, base2_us = interleaved(ours_with_writer, baseline, calls)
    stdlib_us, base3_us = interleaved(ours_with_email_message, baseline, calls // 8, rounds=3)
    ratio = ours_us / base_us
    print(f"plain Jinja render (3 templates):        {base_us:8.0f} us/message")
    print(f"our renderer (Jinja + inlined CSS):      {ours_us:8.0f} us/message")
    print(f"  first message of a shape (css-inline): {first_us:8.0f} us/message")
    print(f"our renderer + our MIME writer:          {writer_us:8.0f} us/message")
    print(f"our renderer + EmailMessage.as_bytes():  {stdlib_us:8.0f} us/message")
    print(f"ratio ours / plain Jinja: {ratio:.2f}x  ({verdict(ratio, GOAL, at_least=False)})")
    print(
        f"ratio renderer+writer / plain Jinja: {writer_us / base2_us:.2f}x; "
        f"renderer+EmailMessage / plain Jinja: {stdlib_us / base3_us:.2f}x"
    )
    met = "met" if writer_us < MIME_GOAL_US else "NOT met"
    print(f"renderer + MIME: {writer_us:.0f} us (goal < {MIME_GOAL_US} us: {met})")
    print(f"peak RSS {peak_rss_mb():.0f} MB")


def first_messages(cases: list[tuple[str, dict]], templates) -> float:
    """Median us of a template's first message in a process: compiling aside (as the plain
    render's first message too), css-inline runs on it."""
    times = []
    for template, ctx in cases[:: len(NAMES)]:
        render_email(template, ctx, templates)  # compiles the templates
        inlining._shape.cache_clear()
        began = time.perf_counter()
        render_email(template, ctx, templates)
        times.append((time.perf_counter() - began) * 1e6)
    return statistics.median(times)


if __name__ == "__main__":
    main()
