"""The README's newcomer sections against the code: every `leadmagnet` command they name
exists, and every EMAIL_URL example of "Sending for real" is one the settings accept."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from service.cli import cli
from service.core.settings import Settings
from tests.conftest import SECRET
from tests.test_compose import ROOT

README = (ROOT / "README.md").read_text()
SECTIONS = ("Two commands", "Commands", "Owner's view", "Sending for real")
CODE = re.compile(r"```[a-z]*\n(.*?)```|`([^`\n]+)`", re.S)
COMMAND = re.compile(r"\bleadmagnet((?: [a-z][a-z-]*){1,2})")


def section(title: str) -> str:
    assert f"\n## {title}\n" in README, f"README has no section {title!r}"
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def named_commands() -> list[str]:
    found = []
    for title in SECTIONS:
        for block, span in CODE.findall(section(title)):
            found += [m.group(1).strip() for m in COMMAND.finditer(block or span)]
    return sorted(set(found))


def test_the_sending_for_real_section_covers_relays_records_and_rules():
    text = section("Sending for real")
    for needed in ("Amazon SES", "Postmark", "Mailgun", "SendGrid", "your own relay"):
        assert f"| {needed} |" in text
    for record in ("v=spf1 include:", "._domainkey.", "v=DKIM1; k=rsa; p=", "_dmarc.", "v=DMARC1"):
        assert record in text
    assert "leadmagnet check dns" in text
    assert "Gmail" in text and "Yahoo" in text and "List-Unsubscribe-Post" in text
    assert "check dns" in named_commands()


@pytest.mark.parametrize("command", named_commands())
def test_every_command_the_readme_names_exists(tmp_path, command):
    env = {"INSTANCE_PATH": str(tmp_path / "none"), "DATABASE_URL": None, "REDIS_URL": None}
    words = command.split()
    result = CliRunner().invoke(cli, [*words, "--help"], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Usage: ")
    # (A group resolves its second word as one of its commands first: "No such command"
    # would have been exit code 2.)


def email_urls() -> list[str]:
    rows = [line for line in section("Sending for real").splitlines() if line.startswith("| ")]
    urls = [
        url for row in rows for url in re.findall(r"`((?:smtp|smtps|smtp\+starttls)://[^`]+)`", row)
    ]
    return [re.sub(r"<[^>]+>", "secret", url) for url in urls]


@pytest.mark.parametrize("url", email_urls())
def test_every_email_url_example_is_accepted(tmp_path, url):
    settings = Settings.from_env(
        {"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": SECRET, "EMAIL_URL": url}
    )
    assert settings.email_url.scheme == url.split("://")[0] and settings.email_url.host
    if "%40" in url:
        assert settings.email_url.username == "postmaster@mg.example.com"


def test_the_examples_cover_every_relay():
    assert len(email_urls()) >= 6
