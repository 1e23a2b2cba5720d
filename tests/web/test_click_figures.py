"""Click figures in the owner's view: the dashboard's step table and top links, and each
step on the sequence page."""

from __future__ import annotations

import re

from tests.click_helpers import SHOP
from tests.conftest import make_app
from tests.helpers import sign_in_owner
from tests.insights.test_clicks import clicked  # noqa: F401 - the fixture
from tests.web.test_admin_pages import assert_self_contained


def page(app, path: str) -> str:
    client = app.test_client()
    sign_in_owner(app, client)
    answer = client.get(path)
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


def test_the_dashboard_shows_people_who_clicked_beside_automated_hits(clicked):  # noqa: F811
    body = page(clicked, "/admin/")
    assert_self_contained(body)  # the top links are text, not links out of the owner's view
    table = body[
        body.index('id="steps-heading"') : body.index("</table>", body.index('id="steps-heading"'))
    ]
    row = re.search(r'<th scope="row">guide</th>(.*?)</tr>', table, re.S)
    assert row is not None
    cells = [
        " ".join(re.sub(r"<[^>]+>", "", c).split())
        for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
    ]
    headings = re.findall(r'<th scope="col"[^>]*>([^<]+)</th>', table)
    figures = dict(zip(headings[1:], cells, strict=True))
    assert figures["Sent"] == "4"
    assert figures["Clicked (people)"] == "2"
    assert figures["Click rate"] == "50.0%"
    assert figures["Automated only (people)"] == "1 (burst 3, head 1 hits)"
    links = body[body.index('id="links-heading"') :]
    assert re.search(r"1 person</span> <code[^>]*>" + re.escape(SHOP) + "</code>", links)


def test_the_sequence_page_shows_each_steps_clicks(clicked):  # noqa: F811
    body = page(clicked, "/admin/sequence")
    guide = body[body.index('id="step-guide"') : body.index('id="step-knees-over-toes"')]
    assert re.search(r"<dt>Clicked \(people\)</dt><dd>2</dd>", guide)
    assert "burst 3, head 1 hits" in guide
    assert SHOP in guide
    later = body[body.index('id="step-knees-over-toes"') :]
    assert "No one has clicked a link of this email yet." in later


def test_the_dashboard_says_when_tracking_is_off(env):
    app = make_app({**env, "TRACK_CLICKS": "false"})
    body = page(app, "/admin/")
    assert "TRACK_CLICKS is false" in body
    assert "No one has clicked a link yet." in body
