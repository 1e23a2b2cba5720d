"""The sequence editor's one form, read back into steps: every field of every step travels
with each button, so moving or adding a step never loses an edit made beside it."""

from __future__ import annotations

from dataclasses import dataclass, field

from werkzeug.datastructures import MultiDict

from ..content.draft_steps import HTML, MARKDOWN, EditableStep, new_step_id, starter_markdown

FIELDS = ("id", "template", "delay", "hours", "days", "subject", "preheader", "mode")
BODIES = ("markdown", "html", "text")
MAX_STEPS = 100


@dataclass
class Posted:
    revision: int
    steps: list[EditableStep]
    action: str  # save | up | down | remove | add | publish
    target: str = ""  # the step an up/down/remove is about
    new_title: str = ""
    problems: list[str] = field(default_factory=list)


def read(form: MultiDict[str, str]) -> Posted:
    """The posted steps in their posted order, and what the pressed button asks."""
    raw_revision = form.get("revision", "")
    revision = int(raw_revision) if raw_revision.isascii() and raw_revision.isdigit() else -1
    steps: list[EditableStep] = []
    for number in range(int(form.get("count", "0") or 0) if _digits(form, "count") else 0):
        if number >= MAX_STEPS:
            break
        values = {name: form.get(f"s{number}-{name}", "") for name in (*FIELDS, *BODIES)}
        values["mode"] = values["mode"] if values["mode"] in (MARKDOWN, HTML) else MARKDOWN
        steps.append(EditableStep(**values))
    action, _, target = form.get("action", "save").partition(":")
    return Posted(revision, steps, action, target, form.get("new_title", "").strip()[:200])


def _digits(form: MultiDict[str, str], name: str) -> bool:
    value = form.get(name, "")
    return value.isascii() and value.isdigit() and len(value) < 4


def apply_action(posted: Posted) -> list[EditableStep]:
    """The steps after the pressed button: moved, removed or one added (ids never change)."""
    steps = list(posted.steps)
    ids = [s.id for s in steps]
    if posted.action in ("up", "down", "remove") and posted.target in ids:
        at = ids.index(posted.target)
        if posted.action == "remove":
            del steps[at]
        else:
            to = at - 1 if posted.action == "up" else at + 1
            if 0 <= to < len(steps):
                steps[at], steps[to] = steps[to], steps[at]
    elif posted.action == "add":
        title = posted.new_title or "New email"
        step_id = new_step_id(title, set(ids))
        steps.append(
            EditableStep(
                id=step_id, delay="2d", subject=title, markdown=starter_markdown(), template=""
            )
        )
    return steps
