"""`leadmagnet preview`: render steps with sample data, to the terminal or to files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..content.broadcast_body import BroadcastText
from ..content.rendering import RenderedEmail
from ..core.models import Purpose, ScheduledEmail
from .compose import compose, render_broadcast_text, render_for
from .context import Context
from .message import new_message_id
from .sequence_check import sample_subscriber

CONFIRM = "confirm"  # the double opt-in email: no step of the sequence, but previewable
UNKNOWN_STEP = 2  # exit code, as click uses for a usage error


@dataclass(frozen=True)
class Preview:
    name: str
    rendered: RenderedEmail
    data: bytes  # the whole message, exactly as the transport would write or send it


def names(ctx: Context) -> list[str]:
    """Every previewable email: the sequence's steps in order, then the confirmation."""
    ids = [step.id for step in ctx.content.steps]
    return ids if CONFIRM in ids else [*ids, CONFIRM]


def render_preview(ctx: Context, name: str) -> Preview:
    """One email for the sample subscriber "Sam", through the worker's own code path: the
    rows are real models made in memory, never added to the session."""
    steps = {step.id for step in ctx.content.steps}
    purpose = Purpose.CONFIRM if name == CONFIRM and name not in steps else Purpose.DRIP
    subscriber = sample_subscriber()
    email = ScheduledEmail(purpose=purpose, step_id=name, message_id=new_message_id(ctx.sender))
    rendered = render_for(ctx, email, subscriber)
    if rendered is None:
        raise KeyError(name)
    msg = compose(ctx, email, subscriber, rendered)[0]
    return Preview(name, rendered, msg.as_bytes(ctx.settings.dkim))


def run(ctx: Context, step: str | None, folder: Path | None, echo: Callable[..., None]) -> int:
    """Print (or, with a folder, write) one step or all; return the exit code."""
    available = names(ctx)
    if step is not None and step not in available:
        echo(
            f"leadmagnet: no step {step!r} in {ctx.settings.sequence_file.name}; "
            f"choose one of: {', '.join(available)}",
            err=True,
        )
        return UNKNOWN_STEP
    previews = [render_preview(ctx, name) for name in ([step] if step else available)]
    if folder is None:
        for preview in previews:
            echo(f"==> {preview.name}\nSubject: {preview.rendered.subject}\n")
            echo(preview.rendered.text)
        return 0
    folder.mkdir(parents=True, exist_ok=True)
    for preview in previews:
        for suffix, content in (
            ("html", preview.rendered.html.encode()),
            ("txt", preview.rendered.text.encode()),
            ("eml", preview.data),
        ):
            path = folder / f"{preview.name}.{suffix}"
            path.write_bytes(content)
            echo(str(path))
    return 0


def render_broadcast_preview(ctx: Context, text: BroadcastText) -> Preview:
    """A broadcast's text as Sam gets it, through the worker's compose path (no row written)."""
    subscriber = sample_subscriber()
    email = ScheduledEmail(purpose=Purpose.BROADCAST, message_id=new_message_id(ctx.sender))
    rendered = render_broadcast_text(ctx, text, subscriber)
    msg = compose(ctx, email, subscriber, rendered)[0]
    return Preview("broadcast", rendered, msg.as_bytes(ctx.settings.dkim))
