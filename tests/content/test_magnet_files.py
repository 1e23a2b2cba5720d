"""A magnet's content as files: read and written byte for byte, parsed with the sequence
file's rules, and owner templates kept inside Jinja's sandbox."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from jinja2.sandbox import SecurityError

from service.content.magnet_files import (
    checked_name,
    fingerprint,
    load_files,
    read_folder,
    write_folder,
)
from service.content.rendering import TemplateFiles, render_email
from service.content.sequence import SequenceError, load_sequence
from service.core.settings import DEFAULT_SEQUENCE_FILE, SHIPPED_TEMPLATES
from service.sending.compose import context
from service.sending.context import for_app
from service.sending.sequence_check import sample_subscriber

KNEES = Path(__file__).resolve().parents[1] / "fixtures" / "knee-checklist"
UNSAFE = [
    "{{ ''.__class__.__mro__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ guide['__class__'] }}",
    # In a branch no sample subscriber takes:
    "{% if first_name == 'never' %}{{ ''.__class__.__mro__ }}{% endif %}",
]


def shipped() -> dict[str, str]:
    return read_folder(SHIPPED_TEMPLATES)


def test_a_folder_round_trips_byte_for_byte(tmp_path: Path):
    files = shipped()
    files["guide/body.txt"] = files["guide/body.txt"].replace("\n", "\r\n")  # CRLF kept too
    files["guide/note.md"] = "Zoë\u2019s *notes*\n"
    write_folder(files, tmp_path / "out")
    assert read_folder(tmp_path / "out") == files
    assert (tmp_path / "out" / "guide" / "body.txt").read_bytes().count(b"\r\n") > 3
    for name in files:
        if name in ("guide/body.txt", "guide/note.md"):
            continue
        assert (tmp_path / "out" / name).read_bytes() == (SHIPPED_TEMPLATES / name).read_bytes()


def test_the_shipped_folder_holds_what_the_package_does_not_need_left_out():
    names = set(shipped())
    assert "sequence.toml" in names and "_base/style.css" in names and "guide/body.html" in names
    assert not any(n.endswith((".py", ".pyc")) for n in names)


def test_files_parse_as_the_folder_does():
    from_files = load_files(shipped())
    from_folder = load_sequence(DEFAULT_SEQUENCE_FILE, SHIPPED_TEMPLATES)
    assert from_files == from_folder
    assert from_files.magnet == {
        "slug": "inside-out-strength",
        "title": "The Ultimate Guide to Burning 10 Pounds of Fat and Building 10 Pounds of Muscle",
    }
    assert isinstance(from_files.templates, TemplateFiles)
    assert from_files.templates.key == fingerprint(shipped())


def test_the_fingerprint_follows_the_content_only():
    files = shipped()
    assert fingerprint(dict(reversed(list(files.items())))) == fingerprint(files)
    assert fingerprint({**files, "guide/subject.txt": "Hi"}) != fingerprint(files)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda f: {k: v for k, v in f.items() if not k.startswith("coaching/")},
            "step 'coaching': unknown template 'coaching'",
        ),
        (lambda f: {k: v for k, v in f.items() if k != "sequence.toml"}, "no sequence.toml"),
        (lambda f: {**f, "../evil.txt": "x"}, "'../evil.txt' is not a content file"),
        (
            lambda f: {**f, "guide/body.html": "{% if %}"},
            "step 'guide': template 'guide/body.html'",
        ),
        (
            lambda f: {
                **f,
                "sequence.toml": f["sequence.toml"].replace('slug = "inside', 'slug = "In'),
            },
            "[magnet] slug 'In",
        ),
    ],
)
def test_bad_files_are_refused_with_one_line_naming_the_place(edit, message):
    with pytest.raises(SequenceError) as found:
        load_files(edit(shipped()))
    assert message in str(found.value)
    assert "\n" not in str(found.value)


@pytest.mark.parametrize(
    "name", ["a/b/c.txt", "/etc/passwd", "guide/.hidden.txt", "x.txt", "a\\b.txt"]
)
def test_only_template_files_are_content_files(name):
    with pytest.raises(SequenceError):
        checked_name(name)


@pytest.mark.parametrize("unsafe", UNSAFE)
@pytest.mark.parametrize("where", ["guide/subject.txt", "knees-over-toes/body.html"])
def test_a_template_reaching_python_internals_is_refused_naming_its_step(unsafe, where):
    files = shipped()
    files[where] = files[where] + unsafe
    with pytest.raises(SequenceError) as found:
        load_files(files)
    step = where.split("/")[0]
    assert str(found.value).startswith(f"step {step!r}: template {where!r} reaches '_")
    assert "\n" not in str(found.value)


def test_the_base_layout_is_refused_by_its_folder():
    files = shipped()
    files["_base/base.html"] += "{{ self.__init__ }}"
    with pytest.raises(
        SequenceError, match=r"template folder '_base': template '_base/base\.html'"
    ):
        load_files(files)


@pytest.mark.parametrize("unsafe", UNSAFE[:2])
def test_the_sandbox_never_renders_python_internals(render_app, unsafe):
    """Should a template get past the check, the sandbox still refuses it while rendering."""
    files = shipped()
    files["guide/subject.txt"] = unsafe
    templates = TemplateFiles("unsafe-" + fingerprint(files), files)
    with render_app.app_context():
        ctx = for_app(render_app)
        ctx = replace(ctx, content=replace(ctx.content, templates=templates))
        variables = context(ctx, sample_subscriber(), "guide", "")
    with pytest.raises(SecurityError):
        render_email("guide", variables, templates)


def test_the_knee_checklist_fixture_is_a_magnet_of_its_own():
    sequence = load_files(read_folder(KNEES))
    assert [s.id for s in sequence.steps] == ["guide", "knee-drills"]
    assert sequence.magnet["slug"] == "knee-checklist"
    assert (KNEES / "guide.pdf").read_bytes().startswith(b"%PDF-")


def test_a_versions_html_is_inlined_once_per_shape(render_app, monkeypatch):
    """A stored version renders through its own environment, and keeps the inlining cache:
    the HTML is what the folder's gives, without css-inline running again."""
    from service.content import inlining

    sequence = load_files(shipped())
    with render_app.app_context():
        ctx = replace(for_app(render_app), content=sequence)
        variables = [context(ctx, sample_subscriber(n), "guide", "") for n in ("Ann", "Bo", "Zoë")]
    expected = [render_email("guide", v, SHIPPED_TEMPLATES).html for v in variables]
    render_email("guide", variables[0], sequence.templates)  # its shape, once
    calls: list[int] = []
    real = inlining.inliner()
    monkeypatch.setattr(inlining, "inliner", lambda: calls.append(1) or real)
    for values, html in zip(variables, expected, strict=True):
        assert render_email("guide", values, sequence.templates).html == html
    assert calls == [], "no css-inline run for a shape seen before"
