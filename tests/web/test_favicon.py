"""/favicon.ico answers with an icon browsers may keep for a week, not a 404."""

from __future__ import annotations

import struct


def test_the_favicon_is_an_icon_kept_for_a_week(client):
    answer = client.get("/favicon.ico")
    assert answer.status_code == 200
    assert answer.mimetype == "image/vnd.microsoft.icon"
    assert "max-age=604800" in answer.headers["Cache-Control"]
    data = answer.get_data()
    reserved, kind, count = struct.unpack("<HHH", data[:6])
    assert (reserved, kind, count) == (0, 1, 1)  # an ICO file with one image
    width, height = data[6], data[7]
    assert (width, height) == (32, 32)
    assert data[22:30] == b"\x89PNG\r\n\x1a\n"  # the image, a PNG inside
