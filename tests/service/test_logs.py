"""Log lines: one JSON object each, the ids they are about, never a subscriber's address."""

from __future__ import annotations

import json
import logging
from urllib.parse import urlsplit

import pytest

from service import logs
from tests.conftest import make_app
from tests.helpers import api_signup, dispatch_inline, outbox_messages

ADDRESS = "ghost.writer@example.com"


def json_lines(err: str) -> list[dict]:
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "something was logged"
    return [json.loads(line) for line in lines]  # every line is one JSON object


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    found = logging.LogRecord("service.test", logging.INFO, __file__, 1, message, args, None)
    found.__dict__.update(extra)
    return found


def test_a_line_has_time_level_logger_message_and_the_ids_it_carries():
    line = logs.JsonFormatter().format(
        record("sent email %s\nsecond line", 7, subscriber_id=3, step="guide", message_id="<m@x>")
    )
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "INFO" and entry["logger"] == "service.test"
    assert entry["message"] == "sent email 7\nsecond line"
    assert entry["time"].endswith("Z") and entry["time"][10] == "T"
    assert (entry["subscriber_id"], entry["step"], entry["message_id"]) == (3, "guide", "<m@x>")
    assert "email_id" not in entry  # only the ids the line is about


def test_an_exception_travels_inside_the_line():
    try:
        raise ValueError("boom")
    except ValueError:
        failed = record("it failed")
        import sys

        failed.exc_info = sys.exc_info()
    entry = json.loads(logs.JsonFormatter().format(failed))
    assert "ValueError: boom" in entry["exception"]


def test_text_format_keeps_the_ids_as_key_value():
    line = logs.TextFormatter().format(record("sent", subscriber_id=3, step="guide"))
    assert line.endswith("INFO service.test sent subscriber_id=3 step=guide")


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("550 5.1.1 <ghost.writer@example.com>: unknown", "550 5.1.1 <g***@example.com>: unknown"),
        ("to Anna@Mail.Example.org failed", "to A***@Mail.Example.org failed"),
        ("no address here", "no address here"),
    ],
)
def test_addresses_in_free_text_are_masked(text: str, masked: str):
    assert logs.mask_addresses(text) == masked
    assert logs.mask("anna@example.com") == "a***@example.com"


def test_the_app_factory_installs_one_handler_however_often_it_runs(env, capsys):
    make_app(env)
    make_app(env)
    ours = [h for h in logging.getLogger().handlers if isinstance(h, logs.StderrHandler)]
    assert len(ours) == 1
    capsys.readouterr()
    logging.getLogger("service.test").info("hello", extra={"subscriber_id": 9})
    [entry] = json_lines(capsys.readouterr().err)
    assert entry["message"] == "hello" and entry["subscriber_id"] == 9


def test_log_format_text_gives_classic_lines(env, capsys):
    make_app({**env, "LOG_FORMAT": "text"})
    capsys.readouterr()
    logging.getLogger("service.test").info("hello")
    err = capsys.readouterr().err
    assert " INFO service.test hello" in err and not err.lstrip().startswith("{")


def test_a_subscriber_s_way_through_logs_ids_and_never_the_address(env, smtpd, capsys):
    app = make_app({**env, "EMAIL_URL": smtpd.url})
    client = app.test_client()
    capsys.readouterr()

    api_signup(client, "sam@example.com")
    assert dispatch_inline(app) == ["sent"]
    [sent] = smtpd.received
    unsubscribe = urlsplit(sent.message["List-Unsubscribe"].strip("<>")).path
    assert client.post(unsubscribe, data="List-Unsubscribe=One-Click").status_code == 200
    # A server whose refusal quotes the recipient, as most do.
    smtpd.handler.rcpt_reply = f"550 5.1.1 <{ADDRESS}>: Recipient address rejected"
    api_signup(client, ADDRESS)
    assert dispatch_inline(app) == ["bounced"]

    # The test's own SMTP server (aiosmtpd, logger "mail.log") logs in this process too.
    entries = [e for e in json_lines(capsys.readouterr().err) if e["logger"] != "mail.log"]
    for entry in entries:
        assert "sam@example.com" not in json.dumps(entry)
        assert ADDRESS not in json.dumps(entry)
    assert {"service.signup", "service.delivery", "service.unsubscribe"} <= {
        e["logger"] for e in entries
    }
    sent_line = next(e for e in entries if e["message"].startswith("sent email"))
    assert sent_line["step"] == "guide" and sent_line["subscriber_id"] == 1
    assert sent_line["message_id"] == sent.message["Message-ID"]
    unsubscribed = next(e for e in entries if "unsubscribed" in e["message"])
    assert (unsubscribed["subscriber_id"], unsubscribed["step"]) == (1, "guide")
    bounced = next(e for e in entries if e["message"].startswith("bounced email"))
    assert bounced["level"] == "WARNING" and bounced["subscriber_id"] == 2
    assert "g***@example.com" in bounced["message"]  # masked, still telling


def test_the_outbox_folder_is_not_logged_with_addresses(app, client, outbox, capsys):
    """The file transport's reply names the .eml file, built from the Message-ID only."""
    capsys.readouterr()
    api_signup(client, "ann@example.com")
    dispatch_inline(app)
    assert outbox_messages(outbox)
    assert "ann@example.com" not in capsys.readouterr().err


# --- gunicorn's access lines carry no link tokens --------------------------------------------

TOKEN = "eyJzIjoxN30.ZmFrZS10b2tlbi1mb3ItdGVzdHM"


def gunicorn_access(glog, path: str, referer: str = "-") -> None:
    """One access line, made by gunicorn's own Logger.access from the request's parts."""
    from datetime import timedelta
    from types import SimpleNamespace

    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": path,
        "PATH_INFO": path.split("?")[0],
        "QUERY_STRING": path.partition("?")[2],
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.9",
        "HTTP_REFERER": referer,
        "HTTP_USER_AGENT": "curl/8",
    }
    response = SimpleNamespace(status="200 OK", sent=512, headers=[("Content-Type", "text/html")])
    request = SimpleNamespace(headers=[("HOST", "news.example.org"), ("REFERER", referer)])
    glog.access(response, request, environ, timedelta(milliseconds=12))


@pytest.fixture
def gunicorn_logger(tmp_path):
    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    config = Config()
    config.set("accesslog", str(tmp_path / "access.log"))
    # The request line, the path, the referer and a header, each of which may hold the link.
    config.set("access_log_format", '%(h)s "%(r)s" %(s)s "%(f)s" %(U)s %({referer}i)s')
    glog = Logger(config)
    yield glog
    for name in logs.GUNICORN_LOGGERS:  # their files are this test's
        found = logging.getLogger(name)
        for handler in [h for h in found.handlers if getattr(h, "_gunicorn", False)]:
            found.removeHandler(handler)


@pytest.mark.parametrize("log_format", ["json", "text"])
@pytest.mark.parametrize(
    "path", [f"/unsubscribe/{TOKEN}", f"/guide/{TOKEN}?x=1", f"/confirm/{TOKEN}", f"/r/{TOKEN}"]
)
def test_access_lines_keep_the_path_but_not_the_token(
    tmp_path, gunicorn_logger, log_format: str, path: str
):
    logs.configure(log_format)  # as the app factory does in each gunicorn worker
    gunicorn_access(gunicorn_logger, path, referer=f"https://news.example.org{path}")
    gunicorn_access(gunicorn_logger, "/admin/subscribers?page=2")
    lines = (tmp_path / "access.log").read_text().splitlines()
    assert len(lines) == 2, lines
    if log_format == "json":
        lines = [json.loads(line)["message"] for line in lines]
    assert TOKEN not in lines[0]
    where = path.split("/")[1]
    assert lines[0].count(f"/{where}/[token]") == 4, lines[0]  # request, referer, path, header
    assert '"GET /admin/subscribers?page=2 HTTP/1.1" 200' in lines[1]
