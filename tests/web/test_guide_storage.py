"""The guide link serves the guide through storage, the same with the folder store and with an
S3-compatible server: every web container sees the same file."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from flask import Flask

from service.content.guide_pages import SAMPLE_GUIDE
from service.content.storage import guide_key, storage_for
from service.core.settings import settings_of
from tests.conftest import free_port, make_app, s3_client, s3_env
from tests.content.test_guide_pages import write_pdf
from tests.helpers import api_signup, dispatch_inline, outbox_messages, parts

GUIDE = SAMPLE_GUIDE.read_bytes()
GUIDE_LINK = re.compile(r"https://news\.example\.org(/guide/\S+)")


def guide_link(app: Flask, outbox: Path) -> str:
    """The guide link of a new subscriber's first email."""
    assert api_signup(app.test_client(), "ann@example.com").status_code == 202
    assert dispatch_inline(app) == ["sent"]
    text, _html = parts(outbox_messages(outbox)[-1])
    match = GUIDE_LINK.search(text)
    assert match
    return match.group(1)


@pytest.fixture
def stored_app(env: dict[str, str], storage_env: dict[str, str]) -> Flask:
    return make_app({**env, **storage_env})


def test_the_guide_link_answers_the_stored_pdf(stored_app: Flask, outbox: Path):
    link = guide_link(stored_app, outbox)
    store = storage_for(settings_of(stored_app))
    assert not store.exists(guide_key(GUIDE))  # stored at first use
    response = stored_app.test_client().get(link, follow_redirects=True)
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.data == GUIDE
    assert store.get(guide_key(GUIDE)) == GUIDE
    # The content's hash is its ETag: asked again for the same file, a reader gets 304.
    again = stored_app.test_client().get(link, headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def test_the_bytes_served_are_the_stores(stored_app: Flask, outbox: Path):
    """What another container put under the key is what this one serves (not its own copy)."""
    link = guide_link(stored_app, outbox)
    assert stored_app.test_client().get(link).status_code == 200
    key = guide_key(GUIDE)
    settings = settings_of(stored_app)
    url = settings.storage_url
    if url.path is not None:
        (url.path / key).write_bytes(b"%PDF-1.4 as the store holds it")
    else:
        s3 = s3_client(url.endpoint_url)
        s3.put_object(Bucket=url.bucket, Key=f"{url.prefix}/{key}", Body=b"%PDF-1.4 as it holds")
    served = stored_app.test_client().get(link).data
    assert served == storage_for(settings).get(key) != GUIDE


def test_a_guide_file_of_ones_own_is_stored_and_served(
    env: dict[str, str], storage_env: dict[str, str], outbox: Path, tmp_path: Path
):
    own = tmp_path / "my-guide.pdf"
    write_pdf(own, pages=2)
    app = make_app({**env, **storage_env, "GUIDE_FILE": str(own)})
    response = app.test_client().get(guide_link(app, outbox))
    assert response.status_code == 200
    assert response.data == own.read_bytes() != GUIDE
    assert storage_for(settings_of(app)).exists(guide_key(own.read_bytes()))


def test_guide_url_still_redirects_and_stores_nothing(
    env: dict[str, str], outbox: Path, tmp_path: Path
):
    app = make_app({**env, "GUIDE_URL": "https://cdn.example.org/guide.pdf"})
    response = app.test_client().get(guide_link(app, outbox))
    assert response.status_code == 302
    assert response.headers["Location"] == "https://cdn.example.org/guide.pdf"
    assert not (tmp_path / "instance" / "files").exists()


def test_a_store_that_does_not_answer_is_a_503_and_a_log_line(
    env: dict[str, str], outbox: Path, caplog: pytest.LogCaptureFixture
):
    dead = f"http://127.0.0.1:{free_port()}"
    app = make_app({**env, **s3_env(dead, "guides")})
    link = guide_link(app, outbox)  # signing up and sending need no store
    with caplog.at_level(logging.ERROR, logger="service.web.errors"):
        response = app.test_client().get(link)
    assert response.status_code == 503
    assert "briefly unavailable" in response.get_data(as_text=True)
    assert dead not in response.get_data(as_text=True)
    assert f"storage unavailable: s3://guides at {dead} unreachable" in caplog.text
