"""The embeddable form: /embed.js, and CORS on /api/subscribe for ALLOWED_ORIGINS only."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from service.core.extensions import db
from service.core.models import ConsentRecord, Subscriber
from service.core.settings import Settings, SettingsError
from tests.conftest import make_app

BLOG = "https://blog.example.com"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type",
}


@pytest.fixture
def cors_app(env):
    app = make_app({**env, "ALLOWED_ORIGINS": f"{BLOG}, http://127.0.0.1:8081"})
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def subscribers(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(Subscriber.id)))


def test_embed_js_is_javascript_that_caches_and_revalidates(client):
    answer = client.get("/embed.js")
    assert answer.status_code == 200
    assert answer.mimetype == "text/javascript"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.cache_control.public and answer.cache_control.max_age == 3600
    assert "form[data-leadmagnet]" in answer.get_data(as_text=True)
    again = client.get("/embed.js", headers={"If-None-Match": answer.headers["ETag"]})
    assert again.status_code == 304


def test_an_allowed_origin_passes_the_preflight_and_reads_the_answer(cors_app):
    client = cors_app.test_client()
    preflight = client.options("/api/subscribe", headers={"Origin": BLOG, **PREFLIGHT})
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == BLOG
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "content-type" in preflight.headers["Access-Control-Allow-Headers"].lower()
    assert "Access-Control-Allow-Credentials" not in preflight.headers
    answer = client.post(
        "/api/subscribe",
        json={"email": "blog@example.com", "consent": True, "page": f"{BLOG}/squats"},
        headers={"Origin": BLOG},
    )
    assert answer.status_code == 202
    assert answer.headers["Access-Control-Allow-Origin"] == BLOG
    assert "Origin" in answer.headers["Vary"]
    with cors_app.app_context():
        assert db.session.scalar(select(ConsentRecord.page_url)) == f"{BLOG}/squats"
    errors = client.post("/api/subscribe", json={"email": "x"}, headers={"Origin": BLOG})
    assert errors.status_code == 422  # the form can show the errors: the browser lets it read
    assert errors.headers["Access-Control-Allow-Origin"] == BLOG


def test_any_other_origin_gets_no_cors_headers(cors_app):
    client = cors_app.test_client()
    for origin in ("https://evil.example.com", "http://blog.example.com", "null"):
        preflight = client.options("/api/subscribe", headers={"Origin": origin, **PREFLIGHT})
        assert "Access-Control-Allow-Origin" not in preflight.headers, origin
        answer = client.post(
            "/api/subscribe",
            json={"email": "x@example.com", "consent": True},
            headers={"Origin": origin},
        )
        assert "Access-Control-Allow-Origin" not in answer.headers, origin


def test_only_the_signup_api_answers_other_origins(cors_app):
    client = cors_app.test_client()
    for path in ("/", "/healthz", "/admin/", "/login"):
        answer = client.get(path, headers={"Origin": BLOG})
        assert "Access-Control-Allow-Origin" not in answer.headers, path


def test_without_allowed_origins_there_are_no_cors_headers(client):
    preflight = client.options("/api/subscribe", headers={"Origin": BLOG, **PREFLIGHT})
    assert "Access-Control-Allow-Origin" not in preflight.headers


@pytest.mark.parametrize(
    "value",
    [
        "*",
        "blog.example.com",
        "https://blog.example.com/page",
        "ftp://x.org",
        "https://x.org:99999",
    ],
)
def test_a_malformed_origin_stops_the_start_naming_it(tmp_path, value):
    env = {"INSTANCE_PATH": str(tmp_path)}
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({**env, "ALLOWED_ORIGINS": f"{BLOG},{value}"})
    assert caught.value.name == "ALLOWED_ORIGINS" and repr(value) in str(caught.value)


def test_origins_are_kept_as_browsers_send_them(tmp_path):
    env = {"INSTANCE_PATH": str(tmp_path)}
    settings = Settings.from_env(
        {**env, "ALLOWED_ORIGINS": "https://Blog.Example.com:443/, http://x.org:8080,"}
    )
    assert settings.allowed_origins == ("https://blog.example.com", "http://x.org:8080")
    assert Settings.from_env(env).allowed_origins == ()
