"""/admin/broadcasts: the list, a broadcast's live progress and figures, and its buttons."""

from __future__ import annotations

import re

from service.core.extensions import db
from service.core.models import Broadcast
from tests.broadcast_helpers import add_subscribers, deliver_ids, hand_out, start_broadcast
from tests.helpers import sign_in_owner

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def test_the_owner_watches_pauses_and_resumes_a_broadcast(app, client):
    add_subscribers(app, 4)
    broadcast_id = start_broadcast(app)
    deliver_ids(app, hand_out(app)[:1])
    assert client.get("/admin/broadcasts").status_code == 302  # sign in first
    sign_in_owner(app, client)
    listing = client.get("/admin/broadcasts").get_data(as_text=True)
    assert f"/admin/broadcasts/{broadcast_id}" in listing and "News for" in listing
    page = client.get(f"/admin/broadcasts/{broadcast_id}").get_data(as_text=True)
    assert "<dt>Sent</dt><dd>1</dd>" in page and "<dt>Remaining</dt><dd>3</dd>" in page
    assert 'http-equiv="refresh"' in page  # live: the page refreshes itself
    token = CSRF.search(page).group(1)
    assert client.post(f"/admin/broadcasts/{broadcast_id}/pause").status_code == 400  # no token
    answer = client.post(f"/admin/broadcasts/{broadcast_id}/pause", data={"csrf_token": token})
    assert answer.status_code == 303
    with app.app_context():
        assert db.session.get_one(Broadcast, broadcast_id).status == "paused"
    client.post(f"/admin/broadcasts/{broadcast_id}/resume", data={"csrf_token": token})
    with app.app_context():
        assert db.session.get_one(Broadcast, broadcast_id).status == "sending"
    again = client.post(
        f"/admin/broadcasts/{broadcast_id}/resume",
        data={"csrf_token": token},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "neither paused nor stopped" in again
    assert client.get("/admin/broadcasts/999").status_code == 404
