"""Everything under /admin answers only to a signed-in owner: 302 to the login page or 401."""

from __future__ import annotations

import pytest
from werkzeug.routing import Rule

from tests.helpers import sign_in_owner

# A value for each kind of URL argument; whether it names anything does not matter here.
SAMPLE = {"IntegerConverter": 1, "PathConverter": "anything/else"}


def admin_rules(app) -> list[Rule]:
    rules = [r for r in app.url_map.iter_rules() if r.rule.startswith("/admin")]
    names = {r.endpoint for r in rules}
    # The walk must see the real pages, or it proves nothing.
    assert {"admin.dashboard", "admin.subscribers", "admin.subscriber", "admin.sequence"} <= names
    return rules


def url_of(rule: Rule) -> str:
    values = {
        name: SAMPLE.get(type(converter).__name__, "x")
        for name, converter in rule._converters.items()
    }
    built = rule.build(values)
    assert built is not None, rule.rule
    return built[1]


def test_every_admin_rule_turns_a_stranger_away(app, client):
    checked = 0
    for rule in admin_rules(app):
        url = url_of(rule)
        if "GET" in rule.methods:
            browser = client.get(url, headers={"Accept": "text/html,*/*;q=0.8"})
            assert browser.status_code == 302, url
            assert browser.headers["Location"].startswith("/login?next=/admin"), url
            for headers in ({"Accept": "application/json"}, {"X-Requested-With": "XMLHttpRequest"}):
                assert client.get(url, headers=headers).status_code == 401, (url, headers)
            checked += 1
        if "POST" in rule.methods:
            # No CSRF token either: the answer must still be 401, not a 400 about the form.
            assert client.post(url, data={"x": "1"}).status_code == 401, url
            assert client.post(url, json={"x": 1}).status_code == 401, url
            checked += 1
    assert checked >= 5


def test_a_stranger_gets_nothing_of_the_pages(app, client):
    answer = client.get("/admin/subscribers?q=ann", headers={"Accept": "application/json"})
    assert answer.status_code == 401
    assert answer.get_json() == {"error": "sign in first"}
    page = client.post("/admin/sequence")
    assert page.status_code == 401 and "Please sign in" in page.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/admin/", "/admin/subscribers", "/admin/sequence"])
def test_the_same_pages_open_for_the_owner(app, client, path):
    sign_in_owner(app, client)
    assert client.get(path).status_code == 200


def test_the_login_page_leads_back_to_the_page_asked_for(app, client):
    first = client.get("/admin/subscribers?status=active")
    assert first.headers["Location"] == "/login?next=/admin/subscribers?status%3Dactive"
    login = client.get(first.headers["Location"]).get_data(as_text=True)
    assert 'name="next" value="/admin/subscribers?status=active"' in login
