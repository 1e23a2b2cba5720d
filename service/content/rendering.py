"""Email rendering: one sandboxed Jinja environment per content version, autoescaped HTML,
inlined CSS, strict variables. Owner-written templates are untrusted code: they render in
Jinja's sandbox, and a template reaching for Python's internals is refused when loaded."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from jinja2 import (
    BaseLoader,
    DictLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateSyntaxError,
    nodes,
    select_autoescape,
)
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .inlining import ScanningLoader, placeholder, render_inlined

BLANK_LINES = re.compile(r"\n{3,}")
TEXT_WIDTH = 78  # RFC 5322 §2.1.1: lines SHOULD stay within 78 characters
ENVIRONMENTS = 16  # content versions whose environment (and inlined shapes) a process keeps


@dataclass(frozen=True, eq=False)
class TemplateFiles:
    """A content version's template files by relative path ("guide/body.html"), known by
    the fingerprint of all its files: one environment, and one inlining cache, per key."""

    key: str
    files: Mapping[str, str] = field(repr=False)

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TemplateFiles) and other.key == self.key


Templates = Path | TemplateFiles  # a folder (read as it is now) or a version's files


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


@lru_cache(maxsize=ENVIRONMENTS)
def email_environment(templates: Templates) -> Environment:
    """The worker's own environment: sandboxed (the sandbox never hands a template Python's
    internals), HTML autoescaped even though it is not Flask's; its loader and `finalize`
    let the HTML be inlined once per template shape (see inlining)."""
    inner: BaseLoader = (
        FileSystemLoader(str(templates))
        if isinstance(templates, Path)
        else DictLoader(dict(templates.files))
    )
    return ImmutableSandboxedEnvironment(
        loader=ScanningLoader(inner),
        finalize=placeholder,
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_email(template: str, context: dict, templates: Templates) -> RenderedEmail:
    """Render `<template>/{subject.txt,body.txt,body.html}` with the given context. Raises
    jinja2's TemplateError (SecurityError among them) for a template that cannot render."""
    env = email_environment(templates)
    subject = env.get_template(f"{template}/subject.txt").render(context)
    text = env.get_template(f"{template}/body.txt").render(context)
    return RenderedEmail(
        subject=" ".join(subject.split()),
        text=wrap_text(BLANK_LINES.sub("\n\n", text).strip()) + "\n",
        html=render_inlined(env, f"{template}/body.html", context),
    )


def unsafe_reach(source: str, name: str) -> str | None:
    """Why the template would reach past what the sandbox allows (an attribute or key with
    a leading underscore, as in `''.__class__`), or None. The sandbox refuses these when they
    render; finding them when the content is loaded refuses them in branches no sample takes."""
    try:
        tree = _parser().parse(source, name)
    except TemplateSyntaxError as exc:
        return f"is not a valid template: {exc.message} (line {exc.lineno})"
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(node, nodes.Getattr | nodes.Getitem)
        reached = node.attr if isinstance(node, nodes.Getattr) else _constant(node.arg)
        if isinstance(reached, str) and reached.startswith("_"):
            return f"reaches {reached!r} (line {node.lineno}), which templates may not use"
    return None


def _constant(node: nodes.Node) -> object:
    return node.value if isinstance(node, nodes.Const) else None


@lru_cache(maxsize=1)
def _parser() -> Environment:
    return ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)


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
