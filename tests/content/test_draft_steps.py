"""The editor's steps: read from a version's files and written back around the other tables."""

import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from service.content.draft_steps import (
    HTML,
    MARKDOWN,
    EditableStep,
    StepError,
    new_step_id,
    steps_of,
    with_steps,
)

SHIPPED = Path(__file__).resolve().parents[2] / "email_templates"


def shipped_files() -> dict[str, str]:
    files = {"sequence.toml": (SHIPPED / "sequence.toml").read_text()}
    for folder in SHIPPED.iterdir():
        if folder.is_dir() and not folder.name.startswith("__"):
            for path in folder.iterdir():
                files[f"{folder.name}/{path.name}"] = path.read_text()
    return files


def test_steps_read_in_order_with_their_subjects_and_html_mode():
    steps = steps_of(shipped_files())
    assert [s.id for s in steps][:2] == ["guide", "knees-over-toes"]
    assert steps[1].delay == "2d" and steps[1].mode == HTML
    assert steps[1].subject and "{% extends" in steps[1].html


def test_written_back_keeps_the_other_tables_and_adds_a_markdown_step():
    files = shipped_files()
    steps = steps_of(files)
    new = EditableStep(
        id=new_step_id("Week 2: Squats!", {s.id for s in steps}),
        delay="1d",
        subject="Squats, {{ first_name }}",
        hours="9-17",
        days="mon-fri",
        markdown="Hi {{ first_name }}, [guide]({{ guide_url }})",
    )
    out = with_steps(files, [*steps[:2], new])
    data = tomllib.loads(out["sequence.toml"])
    before = tomllib.loads(files["sequence.toml"])
    for name in ("sender", "brand", "guide", "consent"):
        assert data[name] == before[name]
    assert [s["id"] for s in data["steps"]] == ["guide", "knees-over-toes", "week-2-squats"]
    assert data["steps"][2]["window"] == {"hours": "9-17", "days": "mon-fri"}
    assert out["week-2-squats/body.md"].startswith("Hi {{ first_name }}")
    assert '{% extends "_base/base.html" %}' in out["week-2-squats/body.html"]
    # Removed steps' folders go; _base and confirm stay.
    assert not any(p.startswith("coaching/") for p in out)
    assert "_base/base.html" in out and "confirm/subject.txt" in out
    # Read back, the new step is a Markdown step with the same fields.
    again = steps_of(out)[2]
    assert again.mode == MARKDOWN and again.hours == "9-17" and again.subject.startswith("Squats")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"delay": "soon"}, "delay"),
        ({"hours": "17-9"}, "hours"),
        ({"hours": "9-17", "days": "weekdays"}, "days"),
        ({"subject": "  "}, "subject"),
        ({"markdown": ""}, "body"),
    ],
)
def test_a_bad_field_is_named(change, field):
    step = EditableStep(id="x", delay="1d", subject="S", markdown="Hi")
    with pytest.raises(StepError) as raised:
        with_steps(shipped_files(), [replace(step, **change)])
    assert raised.value.field == field


def test_new_ids_are_unique_and_never_a_reserved_folder():
    assert new_step_id("Guide", {"guide"}) == "guide-2"
    assert new_step_id("Guide", {"guide", "guide-2"}) == "guide-3"
    assert new_step_id("Confirm", set()) == "confirm-2"
    assert new_step_id("Ça va?", set()) == "ca-va"
    assert new_step_id("!!!", set()) == "step"
