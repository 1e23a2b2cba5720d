"""Rate limits on a route: fixed windows per key (a client, a mailbox). A request takes one
from each of its windows in one round trip to the store, which reads them too, and gives
them back in one more only if the rule does not count its answer. Flask-Limiter took twelve
round trips for the signup's five windows, which cost twice the CPU of the rest of the
signup."""

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
    """One window's count for this request's key."""

    window: Window
    counter: Counter
    count: int

    @property
    def left(self) -> int:
        return max(self.counter.most - self.count, 0)


def client_address() -> str:
    # After TRUSTED_PROXIES is applied: behind a proxy, the client it names.
    return request.remote_addr or ""


def limited(
    *rules: Rule, counted: Callable[[Response], bool], methods: tuple[str, ...] = ("POST",)
) -> Callable[[Callable[..., ResponseReturnValue]], Callable[..., Response]]:
    """The view, refused with 429 while any window of any rule is full for this request, and
    counted in every window when `counted(answer)` says so. One is taken from each window
    before the view, in the same round trip that reads them (two requests never both take
    the last one), and given back after an answer the rule does not count."""

    def decorate(view: Callable[..., ResponseReturnValue]) -> Callable[..., Response]:
        @wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Response:
            if request.method not in methods or not current_app.config["RATELIMIT_ENABLED"]:
                return make_response(view(*args, **kwargs))
            windows = _windows(rules, time.time())
            counters = [counter for _, counter in windows]
            counts, taken = _store().take(counters)
            standings = [Standing(*w, n) for w, n in zip(windows, counts, strict=True)]
            if not taken:
                _refuse(standings)
            g.rate_limit = _closest_to_full(standings)  # an error page carries it too
            try:
                response = make_response(view(*args, **kwargs))
            except BaseException:
                _store().give_back(counters)
                raise
            if counted(response):
                standings = [Standing(s.window, s.counter, s.count + 1) for s in standings]
                g.rate_limit = _closest_to_full(standings)
            else:
                _store().give_back(counters)
            return response

        return checked

    return decorate


def _windows(rules: tuple[Rule, ...], now: float) -> list[tuple[Window, Counter]]:
    """Each window with its counter for this request: fixed windows aligned to the epoch, so a
    key names its window and expires with it."""
    made = []
    for rule in rules:
        owner = rule.key()
        for window in rule.windows:
            number = int(now // window.seconds)
            key = f"{owner}/{window.most}/{window.seconds}/{number}"
            made.append((window, Counter(key, window.most, (number + 1) * window.seconds)))
    return made


def _closest_to_full(standings: list[Standing]) -> Standing:
    return min(standings, key=lambda s: (s.left, s.window.seconds))


def _refuse(standings: list[Standing]) -> None:
    full = [s for s in standings if s.left == 0]
    # Come back when every full window has room: the one that ends last.
    g.rate_limit = max(full, key=lambda s: s.counter.ends)
    log.info("rate limit %s reached (%s)", full[0].window, full[0].counter.key.split("/")[0])
    raise TooManyRequests()


def _store() -> Store:
    store: Store = current_app.extensions[EXTENSION]
    return store


def _headers(response: Response) -> Response:
    """The counts of the window closest to full on every answer of a limited request, and on
    a refusal how long until it has room."""
    standing: Standing | None = g.pop("rate_limit", None)
    if standing is None:
        return response
    response.headers["X-RateLimit-Limit"] = str(standing.counter.most)
    response.headers["X-RateLimit-Remaining"] = str(standing.left)
    response.headers["X-RateLimit-Reset"] = str(standing.counter.ends)
    if response.status_code == 429:
        response.headers["Retry-After"] = str(max(standing.counter.ends - int(time.time()), 1))
    return response


def register(app: Flask) -> None:
    app.extensions[EXTENSION] = store_for(settings_of(app).redis_url)
    app.after_request(_headers)
