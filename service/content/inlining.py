"""CSS inlining once per template shape: per message only the values go into the inlined markup.

css-inline is a pure function of the markup, and the markup of two messages from one template
differs only in the values Jinja escaped into it. So the HTML is rendered with a placeholder
for each value (the environment's `finalize`), css-inline runs once per distinct placeholder
markup (the shape: a template version and the path through its conditions), and each message
puts its values back, escaped as css-inline's serializer writes them: the bytes are those of
inlining the message itself. Whatever could make a value change the parse or the styles
(a value inside a <style>, a class or an unquoted attribute; a template that filters rendered
markup) makes the message inline the plain way instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextvars import ContextVar
from functools import lru_cache
from html.parser import HTMLParser

import css_inline
from jinja2 import (
    BaseLoader,
    Environment,
    TemplateSyntaxError,
    meta,
    nodes,
    pass_eval_context,
)
from jinja2.nodes import EvalContext
from markupsafe import Markup, escape

_recording: ContextVar[list[str] | None] = ContextVar("inline_values", default=None)
PLACEHOLDER = re.compile("\ue000(\\d+)\ue001")
MARKS = tuple(Markup(f"\ue000{n}\ue001") for n in range(1000))
# Values that stay in the markup as Jinja wrote them (their message gets a shape of its own):
# empty or leading-whitespace ones (they can move where the parser puts text), CR and NUL
# (the parser rewrites them), lone surrogates, and anything holding our placeholder marks.
HTML_SPACE = "\t\n\f\r "
UNUSUAL_CHARACTERS = re.compile("[\r\x00\ud800-\udfff\ue000\ue001]")
# Constructs whose output is rendered markup handled again (filtered, stored, called): a
# placeholder inside it would not stand for the value any more.
REWRITES = (
    nodes.FilterBlock,
    nodes.AssignBlock,
    nodes.Macro,
    nodes.CallBlock,
    nodes.Call,
    nodes.Import,
    nodes.FromImport,
)
# A value may sit in text, in a comment, or in a quoted attribute other than these.
STYLED_ATTRIBUTES = frozenset({"class", "id", "style", "lang", "dir"})
# Raw text to css-inline's parser but not to Python's: no value is told apart there.
RAW_TEXT_ELEMENTS = re.compile(r"<(?:xmp|iframe|noembed|noframes|noscript|plaintext)\b", re.I)
CHARACTER_REFERENCE_OR_TAG = re.compile("&[#0-9A-Za-z]*\ue000|</?\ue000")
QUOTED_VALUES = re.compile(r"\"[^\"]*\"|'[^']*'")
Shape = tuple[tuple[str, ...], tuple[Callable[[str], str], ...]]
SHAPES = 256  # distinct shapes kept per process: steps x conditions x content versions


@lru_cache(maxsize=1)
def inliner() -> css_inline.CSSInliner:
    # Media queries (dark mode, narrow screens) cannot be inlined: keep the <style> too.
    return css_inline.CSSInliner(keep_style_tags=True, load_remote_stylesheets=False)


@pass_eval_context
def placeholder(eval_ctx: EvalContext, value: object) -> object:
    """The environment's `finalize`: while an HTML template renders for inlining, each escaped
    value becomes a numbered placeholder and is kept aside; otherwise values pass unchanged."""
    values = _recording.get()
    if values is None or not eval_ctx.autoescape:
        return value  # text templates and autoescape-off blocks: written as Jinja writes them
    if type(value) is not str:
        if hasattr(value, "__html__"):
            return value  # markup: it is part of the shape
        value = str(value)  # a StrictUndefined raises here, as it would when written
    if _static(value) or len(values) >= len(MARKS):
        return value
    values.append(value)
    return MARKS[len(values) - 1]


def _static(text: str) -> bool:
    if not text or text[0] in HTML_SPACE:
        return True
    if text.isascii():
        return "\r" in text or "\x00" in text
    return UNUSUAL_CHARACTERS.search(text) is not None


class ScanningLoader(BaseLoader):
    """Another loader (a folder's, or a version's files) that notes, for each template as it
    is (re)loaded, whether its output can be inlined once per shape, and which templates it
    extends, includes or imports."""

    def __init__(self, inner: BaseLoader) -> None:
        self.inner = inner
        self.generation = 0  # how many loads so far: a render that saw none used noted versions
        self._notes: dict[str, tuple[bool, tuple[str | None, ...]]] = {}
        self._verdicts: dict[str, bool] = {}

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        source, filename, uptodate = self.inner.get_source(environment, template)
        try:
            tree = environment.parse(source, template, filename)
        except TemplateSyntaxError:
            self._notes[template] = (False, ())  # compiling it raises the error for real
        else:
            plain = next(tree.find_all(REWRITES), None) is None
            self._notes[template] = (plain, tuple(meta.find_referenced_templates(tree)))
        self._verdicts = {}
        self.generation += 1
        return source, filename, uptodate

    def inlinable(self, name: str, seen: frozenset[str] = frozenset()) -> bool:
        """True when neither the template nor any it uses rewrites rendered markup."""
        if name in self._verdicts:
            return self._verdicts[name]
        plain, references = self._notes.get(name, (False, ()))
        verdict = (
            plain
            and name not in seen
            and all(ref is not None and self.inlinable(ref, seen | {name}) for ref in references)
        )
        self._verdicts[name] = verdict
        return verdict


def render_inlined(env: Environment, name: str, context: dict) -> str:
    """`inliner().inline(env.get_template(name).render(context))`, without running css-inline
    for a shape it has seen before."""
    template = env.get_template(name)
    loader = env.loader
    if isinstance(loader, ScanningLoader) and loader.inlinable(name):
        generation = loader.generation
        values: list[str] = []
        token = _recording.set(values)
        try:
            marked = template.render(context)
        finally:
            _recording.reset(token)
        # Loads while rendering (an edited template, or another thread) may leave notes
        # about versions other than the ones this render used.
        if loader.generation == generation:
            shape = _shape(marked)
            if shape is not None and len(shape[1]) == len(values):
                return _filled(shape, values)
    return inliner().inline(template.render(context))


def _filled(shape: Shape, values: list[str]) -> str:
    pieces, escapes = shape
    out = [pieces[0]]
    for value, written, piece in zip(values, escapes, pieces[1:], strict=True):
        out.append(written(value))
        out.append(piece)
    return "".join(out)


# How css-inline's serializer writes a value: text escapes & < > and NBSP, attribute values
# & " and NBSP; comments keep what Jinja wrote.
def _text(value: str) -> str:
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return value.replace("\xa0", "&nbsp;")


def _attribute(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("\xa0", "&nbsp;")


def _as_jinja_wrote(value: str) -> str:
    return str(escape(value))


@lru_cache(maxsize=SHAPES)
def _shape(marked: str) -> Shape | None:
    """The inlined markup cut at its placeholders, and how to escape each value; None when a
    value could change how the markup parses or which styles apply."""
    if RAW_TEXT_ELEMENTS.search(marked) or CHARACTER_REFERENCE_OR_TAG.search(marked):
        return None
    found = _Placeholders(marked)
    count = len(PLACEHOLDER.findall(marked))
    if not found.ok or sorted(found.escapes) != list(range(count)):
        return None  # one sits where a value could change the parse or the styles
    parts = PLACEHOLDER.split(inliner().inline(marked))
    if parts[1::2] != [str(n) for n in range(count)]:
        return None  # css-inline moved, copied or dropped a placeholder
    return tuple(parts[0::2]), tuple(found.escapes[n] for n in range(count))


class _Placeholders(HTMLParser):
    """How the value of each placeholder is written where it sits: as text, as a quoted
    attribute value, or as Jinja wrote it (in a comment). A placeholder anywhere else (a
    stylesheet, a script, a doctype) is not found; `ok` is False for one in a styled or
    unquoted attribute, or in a tag or attribute name."""

    def __init__(self, marked: str) -> None:
        super().__init__(convert_charrefs=True)
        self.escapes: dict[int, Callable[[str], str]] = {}
        self.ok = True
        self.in_attribute = False
        self.css: list[str] = []
        self.feed(marked)
        self.close()
        if self.in_attribute and "[" in "".join(self.css):
            self.ok = False  # an attribute selector may match on the value

    def _found(self, text: str, written: Callable[[str], str]) -> None:
        for number in PLACEHOLDER.findall(text):
            self.escapes[int(number)] = written

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if "\ue000" in QUOTED_VALUES.sub("", self.get_starttag_text() or ""):
            self.ok = False  # in a tag or attribute name, or in an unquoted value
        for name, value in attrs:
            if value and "\ue000" in value:
                self.ok = self.ok and name not in STYLED_ATTRIBUTES
                self.in_attribute = True
                self._found(value, _attribute)

    handle_startendtag = handle_starttag

    def handle_data(self, data: str) -> None:
        raw = self.cdata_elem  # inside <style> or <script>
        if raw == "style":
            self.css.append(data)
        if not raw:  # a value in a stylesheet changes the styles; scripts have parse states
            self._found(data, _text)  # of their own: neither belongs in an email

    def handle_comment(self, data: str) -> None:
        self._found(data, _as_jinja_wrote)
