"""SpamAssassin's local rules score every shipped email as clean ham (well under 2 points)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from service.preview import names, render_preview
from service.sequence import load_sequence
from service.settings import DEFAULT_SEQUENCE_FILE
from tests.conftest import REQUIRE_SERVICES

MAX_SCORE = 2.0
SEQUENCE = load_sequence(DEFAULT_SEQUENCE_FILE, DEFAULT_SEQUENCE_FILE.parent)
NAMES = [step.id for step in SEQUENCE.steps] + ["confirm"]
STATUS = re.compile(r"^X-Spam-Status: (?P<verdict>\w+), score=(?P<score>-?[\d.]+)", re.M)
RULE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]+)\s", re.M)
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


@dataclass(frozen=True)
class Score:
    score: float
    rules: dict[str, float]  # every rule that fired, with its points

    def __str__(self) -> str:
        fired = ", ".join(f"{name} {points:+.1f}" for name, points in self.rules.items())
        return f"{self.score:.1f} ({fired or 'no rules'})"


def spamassassin_binary() -> str:
    """SpamAssassin as installed on this machine: CI installs it (.ci/run), tests only use it."""
    found = shutil.which("spamassassin")
    if found is None:
        reason = "spamassassin is not installed (apt-get install spamassassin)"
        if REQUIRE_SERVICES:
            pytest.fail(f"{reason}; LEADMAGNET_REQUIRE_SERVICES=1 makes it mandatory")
        print(f"skipping: {reason}")
        pytest.skip(reason)
    return found


def score(binary: str, home: Path, data: bytes) -> Score:
    """`spamassassin -L -t`: local rules only (no DNS or network), no Bayes learning."""
    result = subprocess.run(
        [
            binary,
            "-L",
            "-t",
            "-x",
            "--cf=use_bayes 0",
            "--cf=bayes_auto_learn 0",
        ],
        input=data,
        capture_output=True,
        timeout=120,
        env={**os.environ, "HOME": str(home)},  # no ~/.spamassassin of the person running it
    )
    report = result.stdout.decode("utf-8", "replace")
    status = STATUS.search(report)
    assert status, f"no X-Spam-Status in spamassassin's output: {result.stderr[-500:]!r}"
    details = report.rpartition("Content analysis details:")[2]
    rules = {name: float(points) for points, name in RULE.findall(details)}
    return Score(float(status.group("score")), rules)


@pytest.fixture(scope="module")
def scores(render_app, tmp_path_factory) -> dict[str, Score]:
    """Each email rendered as the worker would (without DKIM), scored in parallel."""
    binary = spamassassin_binary()
    home = tmp_path_factory.mktemp("spamassassin-home")
    with render_app.app_context():
        assert names(render_app) == NAMES
        messages = {name: render_preview(render_app, name).data for name in NAMES}
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = pool.map(lambda data: score(binary, home, data), messages.values())
        return dict(zip(messages, results, strict=True))


@pytest.mark.parametrize("name", NAMES)
def test_every_email_scores_low(scores, name):
    result = scores[name]
    print(f"spamassassin {name}: {result}")
    assert result.score < MAX_SCORE, f"{name} scores {result}"


def test_the_scorer_catches_spam(render_app, tmp_path):
    """The same call on GTUBE's test string scores as spam: the rules are there and parsed."""
    binary = spamassassin_binary()
    with render_app.app_context():
        data = render_preview(render_app, "guide").data
    spam = data.replace(b"Hi Sam,", f"Hi Sam, {GTUBE}".encode(), 1)
    assert spam != data
    result = score(binary, tmp_path, spam)
    assert result.score >= 5.0 and "GTUBE" in result.rules
