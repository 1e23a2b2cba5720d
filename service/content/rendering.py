"""Email rendering: one Jinja environment, autoescaped HTML, inlined CSS, strict variables."""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, StrictUndefined, select_autoescape

from .inlining import ScanningLoader, placeholder, render_inlined

BLANK_LINES = re.compile(r"\n{3,}")
TEXT_WIDTH = 78  # RFC 5322 §2.1.1: lines SHOULD stay within 78 characters


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


@lru_cache(maxsize=4)
def email_environment(templates_dir: Path) -> Environment:
    """The worker's own environment: HTML autoescaped even though it is not Flask's; its
    loader and `finalize` let the HTML be inlined once per template shape (see inlining)."""
    return Environment(
        loader=ScanningLoader(str(templates_dir)),
        finalize=placeholder,
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_email(template: str, context: dict, templates_dir: Path) -> RenderedEmail:
    """Render `<template>/{subject.txt,body.txt,body.html}` with the given context."""
    env = email_environment(templates_dir)
    subject = env.get_template(f"{template}/subject.txt").render(context)
    text = env.get_template(f"{template}/body.txt").render(context)
    return RenderedEmail(
        subject=" ".join(subject.split()),
        text=wrap_text(BLANK_LINES.sub("\n\n", text).strip()) + "\n",
        html=render_inlined(env, f"{template}/body.html", context),
    )


def wrap_text(text: str, width: int = TEXT_WIDTH) -> str:
    """Rewrap only the lines a long name or address pushed past `width`; the templates'
    own line breaks stay. Words are never split, so a long URL stays clickable."""
    return "\n".join(_wrap_line(line, width) for line in text.split("\n"))


def _wrap_line(line: str, width: int) -> str:
    if len(line) <= width:
        return line
    indent = line[: len(line) - len(line.lstrip())]
    return textwrap.fill(
        line.strip(),
        width=width,
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
