"""Redis down for 30 seconds under a steady stream of signups through gunicorn, with a
worker and beat running: every signup is answered 202 (the rate limiter falls back to
memory), and every guide goes out once Redis is back.

FAULT_REDIS_OUTAGE_SECONDS sets the outage (30 by default, and in CI)."""

from __future__ import annotations

import os
import time

import pytest

from tests.conftest import SECRET, free_port, make_app
from tests.faults.stack import SignupStream, Stack
from tests.procs import PrivateRedis, clean_env, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]
OUTAGE = float(os.environ.get("FAULT_REDIS_OUTAGE_SECONDS") or 30)
INTERVAL = 2  # DISPATCH_INTERVAL: the beat's pass finds what no nudge could deliver
RATE = 4  # signups a second


def test_signups_through_a_redis_outage_are_all_answered_and_all_delivered(
    tmp_path, pg_database, smtpd
):
    redis = PrivateRedis(free_port(), tmp_path)
    redis.start()
    settings = {
        "DATABASE_URL": pg_database,
        "REDIS_URL": redis.url,
        "EMAIL_URL": smtpd.url,
        "SECRET_KEY": SECRET,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DISPATCH_INTERVAL": str(INTERVAL),
        "RATELIMIT_ENABLED": "true",
    }
    make_app(settings)  # the schema, on an empty database
    stack = Stack(tmp_path, clean_env(**settings))
    stack.start()
    try:
        with SignupStream(stack, "r", rate=RATE) as stream:
            time.sleep(3)  # signups while everything is up
            redis.stop()
            down = time.monotonic()
            time.sleep(OUTAGE)  # the outage is real: the stream goes on meanwhile
            redis.start()
            back = time.monotonic()
            time.sleep(3)  # and signups after it
        accepted = set(stream.accepted())
        # Asked after Redis had stopped and answered before it came back.
        during = [a for a in stream.answers if down <= a.at - a.took and a.at < back]

        def delivered() -> bool:
            return {r.recipients[0] for r in smtpd.received} >= accepted

        wait_until(delivered, 120, 0.2)
        assert stack.running(), "no process died of the outage"
    finally:
        stack.stop()
        redis.stop()

    arrived: dict[str, float] = {}
    for received in smtpd.received:
        arrived.setdefault(received.recipients[0], received.at)
    outage_addresses = {a.address for a in during}
    early = [a for a in outage_addresses if a in arrived and arrived[a] < back]
    missing = sorted(accepted - set(arrived))
    last = max(arrived.values(), default=back) - back
    statuses = sorted({a.status for a in stream.answers})
    limited = sum("X-RateLimit-Remaining" in a.headers for a in during)
    print(
        f"\nredis outage: {OUTAGE:.0f}s down, {len(stream.answers)} signups "
        f"({len(during)} during the outage, slowest answer "
        f"{max((a.took for a in during), default=0):.2f}s), answers {statuses}, "
        f"{len(stream.errors)} without an answer, "
        f"{limited}/{len(during)} of those rate-limited in memory; "
        f"{len(accepted) - len(missing)}/{len(accepted)} guides delivered, the last "
        f"{last:.1f}s after Redis returned (DISPATCH_INTERVAL={INTERVAL})"
    )
    assert not stream.errors, stream.errors[:5]
    assert during, "signups went on during the outage"
    assert statuses == [202], [(a.address, a.status, a.body[:200]) for a in stream.answers][:5]
    assert limited == len(during), "the rate limiter kept counting, in memory"
    assert not early, "guides of outage signups cannot leave before Redis returns"
    assert not missing, f"{len(missing)} accepted signups never got their guide: {missing[:5]}"
    assert len(smtpd.received) == len(accepted), "each guide once"
