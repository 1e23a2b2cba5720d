"""A broadcast renders in the `_base` layout of the content in force (the default magnet's
published version), so a layout edited in the browser applies to it, not the folder's."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select

from service.content import versions
from service.content.magnet_files import load_files
from service.core.extensions import db
from service.core.models import Magnet, MagnetVersion
from service.sending.compose import render_broadcast_text
from service.sending.context import for_app
from service.sending.sequence_check import sample_subscriber
from tests.broadcast_helpers import TEXT


def test_an_edited_layout_applies_to_a_broadcast(app):
    with app.app_context():
        ctx = for_app(app)  # loads the default magnet
        magnet = db.session.scalars(select(Magnet).where(Magnet.is_default)).one()
        version = db.session.get_one(MagnetVersion, magnet.published_version_id)
        files = versions.files_of(version)
        files["_base/base.html"] = files["_base/base.html"].replace(
            "</body>", "<p>EDITED-LAYOUT-MARK</p></body>"
        )
        edited = replace(ctx, content=load_files(files))
        assert "EDITED-LAYOUT-MARK" in render_broadcast_text(edited, TEXT, sample_subscriber()).html
        plain = render_broadcast_text(ctx, TEXT, sample_subscriber()).html
        assert "EDITED-LAYOUT-MARK" not in plain
