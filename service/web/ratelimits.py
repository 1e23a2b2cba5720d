"""Rate limits on a route: fixed windows per key (a client, a mailbox), read in one round trip
to the store before the view and counted in one after it, and only for the answers the rule
counts. Flask-Limiter took twelve round trips for the signup's five windows, which cost twice
the CPU of the rest of the signup."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from flask import Flask, current_app, g, make_response, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import TooManyRequests
from werkzeug.wrappers import Response

from ..core.settings import settings_of
from .limitstores import Counter, Store, store_for

log = logging.getLogger(__name__)
EXTENSION = "leadmagnet.ratelimits"


@dataclass(frozen=True)
class Window:
    most: int
    seconds: int

    def __str__(self) -> str:
        return f"{self.most} per {self.seconds} s"


@dataclass(frozen=True)
class Rule:
    """Windows that one key of each request draws on: `key()` names it (a client address, a
    keyed hash of a mailbox: never an address in the clear, since keys reach Redis and logs)."""

    windows: tuple[Window, ...]
    key: Callable[[], str]


@dataclass(frozen=True)
class Standing:
    """One window's count for this request's key, as read before the view."""

    key: str
    window: Window
    count: int
    ends: int  # epoch seconds: the window's fixed end

    @property
    def left(self) -> int:
        return max(self.window.most - self.count, 0)


def client_address() -> str:
    # After TRUSTED_PROXIES is applied: behind a proxy, the client it names.
    return request.remote_addr or ""


def limited(
    *rules: Rule, counted: Callable[[Response], bool], methods: tuple[str, ...] = ("POST",)
) -> Callable[[Callable[..., ResponseReturnValue]], Callable[..., Response]]:
    """The view, refused with 429 while any window of any rule is full for this request, and
    counted in every window when `counted(answer)` says so."""

    def decorate(view: Callable[..., ResponseReturnValue]) -> Callable[..., Response]:
        @wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Response:
            if request.method not in methods or not current_app.config["RATELIMIT_ENABLED"]:
                return make_response(view(*args, **kwargs))
            standings = _read(_counters(rules, time.time()))
            _refuse_if_full(standings)
            g.rate_limit = min(standings, key=lambda s: (s.left, s.window.seconds))
            response = make_response(view(*args, **kwargs))
            if counted(response):
                _store().count([Counter(s.key, s.ends) for s in standings])
                g.rate_limit = _plus_one(g.rate_limit)
            return response

        return checked

    return decorate


def _counters(rules: tuple[Rule, ...], now: float) -> list[tuple[str, Window, int]]:
    """(key, window, end) of each window: fixed windows aligned to the epoch, so a key names
    its window and expires with it."""
    made = []
    for rule in rules:
        owner = rule.key()
        for window in rule.windows:
            number = int(now // window.seconds)
            key = f"{owner}/{window.most}/{window.seconds}/{number}"
            made.append((key, window, (number + 1) * window.seconds))
    return made


def _read(counters: list[tuple[str, Window, int]]) -> list[Standing]:
    counts = _store().read([key for key, _, _ in counters])
    return [
        Standing(key, window, count, ends)
        for (key, window, ends), count in zip(counters, counts, strict=True)
    ]


def _refuse_if_full(standings: list[Standing]) -> None:
    full = [s for s in standings if s.left == 0]
    if full:
        # Come back when every full window has room: the one that ends last.
        g.rate_limit = max(full, key=lambda s: s.ends)
        log.info("rate limit %s reached (%s)", full[0].window, full[0].key.split("/")[0])
        raise TooManyRequests()


def _plus_one(standing: Standing) -> Standing:
    return Standing(standing.key, standing.window, standing.count + 1, standing.ends)


def _store() -> Store:
    store: Store = current_app.extensions[EXTENSION]
    return store


def _headers(response: Response) -> Response:
    """The counts of the window closest to full on every answer of a limited request, and on
    a refusal how long until it has room."""
    standing: Standing | None = g.pop("rate_limit", None)
    if standing is None:
        return response
    response.headers["X-RateLimit-Limit"] = str(standing.window.most)
    response.headers["X-RateLimit-Remaining"] = str(standing.left)
    response.headers["X-RateLimit-Reset"] = str(standing.ends)
    if response.status_code == 429:
        response.headers["Retry-After"] = str(max(standing.ends - int(time.time()), 1))
    return response


def register(app: Flask) -> None:
    app.extensions[EXTENSION] = store_for(settings_of(app).redis_url)
    app.after_request(_headers)
