"""`leadmagnet content import/export` and `magnets list/show`: a second magnet from a folder,
its emails rendered from its own content, its own guide served from the store (a folder or
S3), and the default magnet round-tripping byte for byte."""

from __future__ import annotations

import filecmp
import re
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from flask import Flask
from sqlalchemy import func, select

from service.content.magnets import by_slug
from service.core.extensions import db
from service.core.models import MagnetVersion, ScheduledEmail, Subscriber
from service.core.settings import SHIPPED_TEMPLATES
from service.sending.context import for_app
from service.sending.schedule import schedule_step
from tests.conftest import make_app
from tests.helpers import api_signup, dispatch_inline, outbox_messages, parts
from tests.sending.test_drip import START

KNEES = Path(__file__).resolve().parents[1] / "fixtures" / "knee-checklist"
LINK = re.compile(r"https://news\.example\.org(/guide/\S+)")


def cli(app: Flask, *args: str, code: int = 0) -> str:
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == code, result.output
    return result.stdout if code == 0 else result.output


def import_knees(app: Flask) -> None:
    preview = cli(app, "content", "import", str(KNEES))
    assert preview.splitlines() == [
        "knee-checklist: new magnet 'The Happy Knees Checklist', 10 files with its guide",
        "nothing changed: run again with --yes to apply this",
    ]
    with app.app_context():
        assert by_slug("knee-checklist") is None
    assert "imported: 1 magnet changed" in cli(app, "content", "import", str(KNEES), "--yes")


def test_a_second_magnet_is_imported_from_its_folder(app):
    import_knees(app)
    listed = cli(app, "magnets", "list").splitlines()
    assert [line.split("\t")[0] for line in listed] == ["inside-out-strength", "knee-checklist"]
    assert listed[1] == "knee-checklist\tThe Happy Knees Checklist\tv1\t0 in sequence"
    shown = cli(app, "magnets", "show", "knee-checklist")
    assert "title: The Happy Knees Checklist" in shown and "guide: guides/" in shown
    assert re.search(r"v1 \(in force\): made .* by cli", shown)
    again = cli(app, "content", "import", str(KNEES.parent))  # a folder of magnet folders
    assert again.splitlines() == [
        "knee-checklist: unchanged",
        "nothing to import: every magnet is as the folders have it",
    ]


def knee_email(app: Flask, address: str) -> None:
    """A subscriber (signed up for the default) with the knee magnet's first email due now,
    written as the knee magnet's context writes it."""
    assert api_signup(app.test_client(), address).status_code == 202
    with app.app_context():
        ctx = for_app(app)
        knees = by_slug("knee-checklist")
        assert knees is not None
        knee_ctx = ctx.for_magnet(knees.id)
        assert knee_ctx.magnet_id == knees.id and not knee_ctx.default_magnet
        assert knee_ctx.sender == "Inside Out Strength <knees@insideoutstrength.example>"
        subscriber = db.session.scalars(select(Subscriber)).one()
        row = schedule_step(knee_ctx, subscriber, knee_ctx.content.first, ctx.now())
        assert row.magnet_id == knees.id
        db.session.commit()


@pytest.fixture
def stored_app(env: dict[str, str], storage_env: dict[str, str]) -> Flask:
    return make_app({**env, **storage_env})


def test_its_emails_render_from_its_own_content_and_link_its_own_guide(stored_app, outbox):
    app = stored_app
    import_knees(app)
    with time_machine.travel(START, tick=False):
        knee_email(app, "kim@example.com")
        assert sorted(dispatch_inline(app)) == ["sent", "sent"]
    subjects = [m["Subject"] for m in outbox_messages(outbox)]
    assert "Your Happy Knees Checklist, there" in subjects
    knee = next(m for m in outbox_messages(outbox) if "Knees" in m["Subject"])
    assert knee["From"] == "Inside Out Strength <knees@insideoutstrength.example>"
    text, _html = parts(knee)
    assert "(1 page)" in text  # counted from its own stored PDF
    link = LINK.search(text)
    assert link and "?m=" in link.group(1)
    response = app.test_client().get(link.group(1))
    assert response.status_code == 200
    assert response.data == (KNEES / "guide.pdf").read_bytes()
    # The token is good for that magnet only: the default's token with ?m= is no link.
    default = next(m for m in outbox_messages(outbox) if m is not knee)
    default_link = LINK.search(parts(default)[0])
    assert default_link
    default_path = default_link.group(1)
    knee_query = link.group(1).partition("?")[2]
    assert app.test_client().get(f"{default_path}?{knee_query}").status_code == 404
    # Its one follow-up, a day later, from its own content; nothing after it.
    with time_machine.travel(START + timedelta(days=1, minutes=1), tick=False):
        assert dispatch_inline(app) == ["sent"]
    with time_machine.travel(START + timedelta(days=30), tick=False):
        dispatch_inline(app)
    knee_subjects = [m["Subject"] for m in outbox_messages(outbox) if "knees@" in m["From"]]
    assert knee_subjects == ["Your Happy Knees Checklist, there", "Three knee drills, there"]
    with app.app_context():
        rows = db.session.scalars(select(ScheduledEmail).where(ScheduledEmail.step_id == "guide"))
        assert len({r.magnet_id for r in rows}) == 2, "each magnet's guide is its own row"


def test_export_then_import_of_the_default_magnet_is_byte_identical(app, tmp_path):
    written = cli(app, "content", "export", str(tmp_path / "out"))
    folder = tmp_path / "out" / "inside-out-strength"
    assert written.splitlines() == [str(folder)]
    compared = filecmp.dircmp(folder, SHIPPED_TEMPLATES, ignore=["__init__.py", "__pycache__"])
    assert not compared.left_only and not compared.right_only
    for sub in [".", *(p.name for p in folder.iterdir() if p.is_dir())]:
        for path in (folder / sub).iterdir():
            if path.is_file():
                assert path.read_bytes() == (SHIPPED_TEMPLATES / sub / path.name).read_bytes()
    assert not (folder / "guide.pdf").exists(), "the default guide is GUIDE_FILE's, not uploaded"
    output = cli(app, "content", "import", str(tmp_path / "out"), "--yes")
    assert output.splitlines() == [
        "inside-out-strength: unchanged",
        "nothing to import: every magnet is as the folders have it",
    ]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(MagnetVersion)) == 1
    again = cli(app, "content", "export", str(tmp_path / "out"), code=1)
    assert "is not empty: export into a new folder" in again


def test_an_exported_knee_magnet_carries_its_guide(app, tmp_path):
    import_knees(app)
    cli(app, "content", "export", str(tmp_path / "out"))
    exported = tmp_path / "out" / "knee-checklist"
    assert (exported / "guide.pdf").read_bytes() == (KNEES / "guide.pdf").read_bytes()
    assert (exported / "sequence.toml").read_bytes() == (KNEES / "sequence.toml").read_bytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["magnets", "show", "nope"], "no magnet 'nope'"),
        (["content", "versions", "nope"], "no magnet 'nope'"),
        (["content", "publish", "inside-out-strength", "9"], "has no version 9"),
        (["content", "diff", "inside-out-strength", "1", "2"], "has no version 2"),
    ],
)
def test_errors_name_what_is_wrong(app, args, message):
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code != 0
    assert message in result.output


def test_an_unsafe_template_is_refused_at_import_naming_its_step(app, tmp_path):
    folder = tmp_path / "knee-checklist"
    import shutil

    shutil.copytree(KNEES, folder)
    (folder / "knee-drills" / "body.txt").write_text("{{ cycler.__init__.__globals__ }}\n")
    result = app.test_cli_runner().invoke(args=["content", "import", str(folder), "--yes"])
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if not line.startswith("{")]  # logs
    assert len(lines) == 1
    assert "step 'knee-drills': template 'knee-drills/body.txt' reaches '__globals__'" in lines[0]
    with app.app_context():
        assert by_slug("knee-checklist") is None


def test_sequence_check_renders_another_magnets_published_steps(app):
    import_knees(app)
    output = cli(app, "sequence", "check", "--magnet", "knee-checklist")
    assert "  guide: 0 after the previous email: Your Happy Knees Checklist, Sam" in output
    assert "  knee-drills: 1d after the previous email: Three knee drills, Sam" in output
    assert "sequence.toml" not in output.splitlines()[0]
    missing = app.test_cli_runner().invoke(args=["sequence", "check", "--magnet", "nope"])
    assert missing.exit_code == 1 and "no magnet 'nope'" in missing.output
