"""The editor's view of a version's files: the steps as forms edit them (delay, window,
subject, preheader, body), and back to files, with sequence.toml written anew around them
(the [sender], [brand], [guide], [consent] and [magnet] tables kept as they were)."""

from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass, replace

import tomli_w

from .markdown_body import to_templates
from .sequence import STEP_ID, SequenceError, Window, parse_delay

SEQUENCE = "sequence.toml"
MARKDOWN, HTML = "markdown", "html"
RESERVED = ("_base", "confirm")  # folders that are no step's own


class StepError(ValueError):
    """A field of a step is wrong: `field` names the form field, the message says why."""

    def __init__(self, step_id: str, field: str, message: str) -> None:
        super().__init__(f"step {step_id!r}: {message}")
        self.step_id, self.field, self.message = step_id, field, message


@dataclass(frozen=True)
class EditableStep:
    id: str
    delay: str
    subject: str
    preheader: str = ""
    hours: str = ""  # the send window's hours ("9-17"); empty: no window
    days: str = ""  # its weekdays ("mon-fri"); empty with hours: every day
    mode: str = MARKDOWN
    markdown: str = ""
    html: str = ""
    text: str = ""
    template: str = ""  # the template folder; a new step's is its id

    @property
    def folder(self) -> str:
        return self.template or self.id


def table(files: dict[str, str]) -> dict:
    try:
        return tomllib.loads(files.get(SEQUENCE, ""))
    except tomllib.TOMLDecodeError as exc:
        raise SequenceError(f"{SEQUENCE}: {exc}") from None


def steps_of(files: dict[str, str]) -> list[EditableStep]:
    """The steps of these files, in order, as the editor shows them."""
    found: list[EditableStep] = []
    for entry in table(files).get("steps", []):
        step_id = str(entry.get("id", ""))
        folder = str(entry.get("template", step_id))
        window = entry.get("window") if isinstance(entry.get("window"), dict) else None
        markdown = files.get(f"{folder}/body.md")
        found.append(
            EditableStep(
                id=step_id,
                delay=str(entry.get("delay", "0")),
                subject=files.get(f"{folder}/subject.txt", "").strip(),
                preheader=str(entry.get("preheader", "")),
                hours=str(window.get("hours", "")) if window else "",
                days=str(window.get("days", "")) if window else "",
                mode=MARKDOWN if markdown is not None else HTML,
                markdown=markdown or "",
                html=files.get(f"{folder}/body.html", ""),
                text=files.get(f"{folder}/body.txt", ""),
                template=folder,
            )
        )
    return found


def checked(step: EditableStep) -> EditableStep:
    """The step if its fields are valid (StepError naming the first bad field otherwise),
    with its window filled in ("every day" when only hours are given)."""
    if not STEP_ID.match(step.id):
        raise StepError(step.id, "id", "the id must be lowercase letters, digits, - or _")
    try:
        parse_delay(step.delay.strip())
    except SequenceError as exc:
        raise StepError(step.id, "delay", str(exc)) from None
    if not step.subject.strip():
        raise StepError(step.id, "subject", "the subject is empty")
    if "\n" in step.subject.strip() or "\n" in step.preheader:
        raise StepError(step.id, "subject", "the subject and preheader are one line each")
    hours, days = step.hours.strip(), step.days.strip().lower()
    if days and not hours:
        hours = "0-24"
    if hours:
        try:
            Window.parse({"hours": hours, "days": days or "mon-sun"})
        except SequenceError as exc:
            field = "days" if "days" in str(exc) else "hours"
            raise StepError(step.id, field, str(exc)) from None
    body = step.markdown if step.mode == MARKDOWN else step.html
    if not body.strip():
        raise StepError(step.id, "body", "the body is empty")
    return replace(step, delay=step.delay.strip(), hours=hours, days=days)


def with_steps(files: dict[str, str], steps: list[EditableStep]) -> dict[str, str]:
    """These files with their steps replaced by `steps` (checked first): sequence.toml
    written anew, each step's folder written, the folders of removed steps dropped."""
    steps = [checked(step) for step in steps]
    if not steps:
        raise StepError("", "steps", "a sequence needs at least one step")
    ids = [step.id for step in steps]
    if len(set(ids)) != len(ids):
        raise StepError(ids[0], "id", "two steps have the same id")
    data = table(files)
    data["steps"] = [_entry(step) for step in steps]
    kept = {step.folder for step in steps} | set(RESERVED)
    result = {
        path: text
        for path, text in files.items()
        if "/" not in path or path.split("/", 1)[0] in kept
    }
    result[SEQUENCE] = tomli_w.dumps(data)
    for step in steps:
        if step.mode != MARKDOWN:  # HTML mode: the HTML is the truth from now on
            result.pop(f"{step.folder}/body.md", None)
        result.update(_step_files(step))
    return result


def _entry(step: EditableStep) -> dict:
    entry: dict = {"id": step.id, "delay": step.delay, "template": step.folder}
    if step.preheader.strip():
        entry["preheader"] = step.preheader.strip()
    if step.hours:
        entry["window"] = {"hours": step.hours, "days": step.days or "mon-sun"}
    return entry


def _step_files(step: EditableStep) -> dict[str, str]:
    folder = step.folder
    subject = step.subject.strip() + "\n"
    if step.mode == MARKDOWN:
        html, text = to_templates(step.markdown, step.subject.strip())
        markdown = step.markdown.replace("\r\n", "\n")
        return {
            f"{folder}/subject.txt": subject,
            f"{folder}/body.md": markdown,
            f"{folder}/body.html": html,
            f"{folder}/body.txt": text,
        }
    return {
        f"{folder}/subject.txt": subject,
        f"{folder}/body.html": step.html.replace("\r\n", "\n"),
        f"{folder}/body.txt": step.text.replace("\r\n", "\n"),
    }


def new_step_id(title: str, taken: set[str]) -> str:
    """An id from a title ("Week 2: Squats!" -> "week-2-squats"), made unique with -2, -3."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    base = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")[:56] or "step"
    taken = taken | set(RESERVED)
    candidate, number = base, 2
    while candidate in taken:
        candidate, number = f"{base}-{number}", number + 1
    return candidate


def starter_markdown() -> str:
    """What a new step's body starts as: the variables in use, to edit."""
    return (
        "Hi {{ greeting_name }},\n\n"
        "Write your email here.\n\n"
        "[Open your guide]({{ guide_url }})\n\n"
        "Talk soon,  \n{{ sender_name }}\n"
    )
