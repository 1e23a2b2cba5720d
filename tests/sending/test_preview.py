"""`leadmagnet preview`: every step with sample data, printed or written to files."""

from __future__ import annotations

from email import message_from_bytes, policy

from service.content.sequence import load_sequence
from service.core.settings import DEFAULT_SEQUENCE_FILE
from tests.conftest import PUBLIC_URL

SEQUENCE = load_sequence(DEFAULT_SEQUENCE_FILE, DEFAULT_SEQUENCE_FILE.parent)
NAMES = [step.id for step in SEQUENCE.steps] + ["confirm"]


def test_preview_prints_subject_and_text_of_every_step(render_app):
    result = render_app.test_cli_runner().invoke(args=["preview"])
    assert result.exit_code == 0, result.output
    out = result.output
    for name in NAMES:
        assert f"==> {name}\n" in out
    assert out.index("==> guide") < out.index("==> coaching") < out.index("==> confirm")
    assert "Subject: Sam, your free guide is here" in out
    assert "Subject: Would a little help from a coach make this easier?" in out
    assert out.count("Hi Sam,") == len(NAMES)
    assert out.count(f"{PUBLIC_URL}/unsubscribe/") == len(NAMES)
    assert "<p>" not in out  # the text part, not the HTML


def test_preview_of_one_step(render_app):
    result = render_app.test_cli_runner().invoke(args=["preview", "confirm"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("==> confirm\nSubject: Confirm your email")
    assert f"{PUBLIC_URL}/confirm/" in result.output
    assert "==> guide" not in result.output


def test_preview_to_a_folder_writes_html_text_and_eml(render_app, tmp_path):
    folder = tmp_path / "previews"
    result = render_app.test_cli_runner().invoke(args=["preview", "--to", str(folder)])
    assert result.exit_code == 0, result.output
    expected = {f"{name}.{ext}" for name in NAMES for ext in ("html", "txt", "eml")}
    assert {p.name for p in folder.iterdir()} == expected
    assert sorted(result.output.split()) == sorted(str(folder / name) for name in expected)

    msg = message_from_bytes((folder / "guide.eml").read_bytes(), policy=policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["Subject"] == "Sam, your free guide is here"
    assert msg["List-Unsubscribe"].startswith(f"<{PUBLIC_URL}/unsubscribe/")
    text = msg.get_body(("plain",)).get_content()
    assert text.splitlines() == (folder / "guide.txt").read_text().splitlines()
    assert (folder / "guide.html").read_text().startswith("<!DOCTYPE html>")
    assert b"\r\n" in (folder / "guide.eml").read_bytes()  # wire format, as the worker writes


def test_an_unknown_step_is_one_line_and_exit_code_2(render_app, tmp_path):
    runner = render_app.test_cli_runner()
    result = runner.invoke(args=["preview", "no-such-step", "--to", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert "'no-such-step'" in line and "guide" in line and "confirm" in line
    assert "Traceback" not in result.output
    assert not (tmp_path / "x").exists()
