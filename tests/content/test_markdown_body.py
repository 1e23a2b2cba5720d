"""A Markdown body becomes the two templates: HTML in the _base layout and a readable text."""

from service.content.markdown_body import to_templates

BODY = """Hi {{ first_name }},

Your guide is ready: [Open your guide]({{ guide_url }}) and **start today**.

- squat <slowly>
- breathe

1. first
2. second

> a quote

[{{ unsubscribe_url }}]({{ unsubscribe_url }})
"""


def test_html_extends_the_base_layout_and_keeps_the_variables():
    html, _ = to_templates(BODY, "Welcome, {{ first_name }}")
    assert html.startswith('{% extends "_base/base.html" %}')
    assert "{% block subject %}Welcome, {{ first_name }}{% endblock %}" in html
    assert '<a href="{{ guide_url }}">Open your guide</a>' in html
    assert "<strong>start today</strong>" in html
    assert "<li>squat &lt;slowly&gt;</li>" in html  # no raw HTML from Markdown
    assert "<ol>" in html and "<blockquote>" in html


def test_text_is_hand_readable_with_each_link_spelled_out():
    _, text = to_templates(BODY, "Welcome")
    assert text.startswith('{% extends "_base/base.txt" %}')
    assert "Your guide is ready: Open your guide: {{ guide_url }} and start today." in text
    assert "- squat <slowly>\n- breathe\n" in text
    assert "1. first\n2. second\n" in text
    assert "> a quote" in text
    assert "**" not in text and "<a" not in text
    # A link whose words are its address is written once.
    assert text.count("{{ unsubscribe_url }}") == 1


def test_raw_html_in_markdown_is_shown_not_run():
    html, _ = to_templates('<script>alert(1)</script>\n\n<img src=x onerror="y">', "S")
    assert "<script>" not in html and "<img" not in html


def test_a_subject_cannot_close_the_title_block():
    html, _ = to_templates("Hi", "A {% endblock %} B")
    assert html.count("{% endblock %}") == 2  # the subject's and the content's, no third
