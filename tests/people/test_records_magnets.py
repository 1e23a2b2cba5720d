"""What we hold, per magnet: `subscribers show` lists each magnet with its consent entries;
`subscribers export` has a magnets column and takes --magnet SLUG."""

from __future__ import annotations

import csv
import json

from tests.helpers import api_signup
from tests.magnets import KNEE, add_magnet, default_id


def test_show_lists_each_magnet_with_its_consent_entries(app, client):
    add_magnet(app)
    default = default_id(app)
    api_signup(client, "ann@example.com", magnet=KNEE)
    api_signup(client, "ann@example.com")
    result = app.test_cli_runner().invoke(args=["subscribers", "show", "ann@example.com"])
    assert result.exit_code == 0, result.output
    held = json.loads(result.output)
    with app.app_context():
        from service.core.extensions import db
        from service.core.models import Magnet

        default_slug = db.session.get_one(Magnet, default).slug
    assert [m["slug"] for m in held["magnets"]] == [KNEE, default_slug]
    for magnet in held["magnets"]:
        [entry] = magnet["consents"]
        assert entry["action"] == "consent" and entry["magnet"] == magnet["slug"]
        assert magnet["stopped_at"] is None and magnet["taken_at"]
    assert [e["magnet"] for e in held["emails"]] == [KNEE, default_slug]


def test_export_has_the_magnets_taken_and_filters_by_one(app, client, tmp_path):
    add_magnet(app)
    add_magnet(app, "meal-plan", "The meal plan")
    api_signup(client, "ann@example.com", magnet=KNEE)
    api_signup(client, "ann@example.com", magnet="meal-plan")
    api_signup(client, "bo@example.com", magnet="meal-plan")
    api_signup(client, "cy@example.com", magnet=KNEE)
    target = tmp_path / "all.csv"
    runner = app.test_cli_runner()
    result = runner.invoke(args=["subscribers", "export", "-o", str(target)])
    assert result.exit_code == 0, result.output
    rows = {r["email"]: r["magnets"] for r in csv.DictReader(target.open())}
    assert rows == {
        "ann@example.com": f"{KNEE} meal-plan",
        "bo@example.com": "meal-plan",
        "cy@example.com": KNEE,
    }
    only = tmp_path / "knee.csv"
    result = runner.invoke(args=["subscribers", "export", "--magnet", KNEE, "-o", str(only)])
    assert result.exit_code == 0, result.output
    assert [r["email"] for r in csv.DictReader(only.open())] == [
        "ann@example.com",
        "cy@example.com",
    ]
    assert "exported 2 subscribers" in result.output
    result = runner.invoke(args=["subscribers", "export", "--magnet", "nope"])
    assert result.exit_code != 0 and "no lead magnet 'nope'" in result.output
