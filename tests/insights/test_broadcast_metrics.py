"""The broadcast gauges: each live broadcast's recipients by outcome, from the progress query."""

from __future__ import annotations

from prometheus_client import generate_latest

from service.insights.scrape import registry
from tests.broadcast_helpers import add_subscribers, deliver_ids, hand_out, start_broadcast


def test_a_live_broadcast_shows_its_progress_and_a_finished_one_leaves(app):
    add_subscribers(app, 3)
    broadcast_id = start_broadcast(app)
    handed = hand_out(app)
    deliver_ids(app, handed[:1])
    text = generate_latest(registry(app)).decode()
    assert f'leadmagnet_broadcast_emails{{broadcast="{broadcast_id}",outcome="sent"}} 1.0' in text
    assert (
        f'leadmagnet_broadcast_emails{{broadcast="{broadcast_id}",outcome="remaining"}} 2.0' in text
    )
    deliver_ids(app, handed[1:])
    hand_out(app)
    assert f'broadcast="{broadcast_id}"' not in generate_latest(registry(app)).decode()
