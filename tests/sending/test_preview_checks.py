"""The editor's cheap warnings on a rendered step."""

from service.content.rendering import RenderedEmail
from service.sending.preview_checks import warnings

OURS = "https://news.example.org"


def test_a_clean_email_has_no_warning():
    html = f'<a href="{OURS}/guide/x">guide</a> <a href="HTTPS://NEWS.example.org/u">u</a>'
    assert warnings(RenderedEmail("Your guide", "Hi", html), OURS) == []


def test_each_warning_says_what_is_wrong():
    html = "<a href=\"https://tracker.example.net/x\">a</a><a href='http://b.example.com'>b</a>"
    found = warnings(RenderedEmail("FREE GUIDE NOW!!", "  \n", html), OURS)
    assert found[0].startswith("The email has no text part")
    assert found[1] == "Links to other hosts than yours: b.example.com, tracker.example.net."
    assert found[2].startswith("The subject is all in capitals")


def test_a_short_capital_word_is_no_shouting():
    assert warnings(RenderedEmail("FAQ", "text", ""), OURS) == []
