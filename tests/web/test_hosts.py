"""Host checking: the app answers only to PUBLIC_URL's host, the loopback names and
ALLOWED_HOSTS (DNS rebinding, forged X-Forwarded-Host); anything else is a 400."""

from __future__ import annotations

import pytest

from service.settings import Settings, SettingsError
from tests.conftest import make_app

PAGES = ["/", "/healthz", "/admin/", "/unsubscribe/not-a-real-token", "/login"]


@pytest.mark.parametrize("path", PAGES)
def test_a_foreign_host_is_refused_on_every_page(client, path):
    answer = client.get(path, headers={"Host": "attacker.example"})
    assert answer.status_code == 400
    assert "could not be understood" in answer.get_data(as_text=True)


def test_a_foreign_host_is_refused_on_the_api_with_json(client):
    answer = client.post(
        "/api/subscribe",
        json={"email": "ann@example.com", "consent": True},
        headers={"Host": "attacker.example:443"},
    )
    assert answer.status_code == 400
    assert answer.get_json() == {"error": "The request could not be understood."}


@pytest.mark.parametrize(
    "host", ["news.example.org", "news.example.org:8443", "localhost:5000", "127.0.0.1"]
)
def test_the_public_host_and_the_loopback_names_are_answered(client, host):
    assert client.get("/healthz", headers={"Host": host}).status_code == 200


def test_allowed_hosts_adds_internal_names(env):
    client = make_app({**env, "ALLOWED_HOSTS": "web, Metrics.Internal"}).test_client()
    for host in ("web:8000", "metrics.internal"):
        assert client.get("/healthz", headers={"Host": host}).status_code == 200, host
    assert client.get("/", headers={"Host": "web"}).status_code == 200
    assert client.get("/", headers={"Host": "webx"}).status_code == 400


def test_behind_a_proxy_the_forwarded_host_is_checked(env):
    client = make_app({**env, "TRUSTED_PROXIES": "1"}).test_client()
    proxy = {"REMOTE_ADDR": "10.0.0.5"}

    def get(forwarded_host: str):
        headers = {"Host": "web:8000", "X-Forwarded-Host": forwarded_host}
        return client.get("/", headers=headers, environ_base=proxy).status_code

    assert get("news.example.org") == 200
    assert get("attacker.example") == 400


@pytest.mark.parametrize("value", ["https://web", "web:8000", "*", "we b", "-web"])
def test_a_malformed_allowed_host_is_named(env, value):
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({**env, "ALLOWED_HOSTS": value})
    assert str(refused.value).startswith("leadmagnet: setting ALLOWED_HOSTS ")
