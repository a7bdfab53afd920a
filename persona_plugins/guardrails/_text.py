"""Text handling shared by the detectors: bounded input, sentences, content words.

Everything here is defensive: any input (empty, huge, not text, not English) gives a result, never
an exception. Detectors look at the first :data:`MAX_CHARS` characters of a response only, so that
a runaway generation cannot make a check slow.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from persona_plugins.guardrails.normalise import MAX_CHARS

__all__ = [
    "MAX_CHARS",
    "LazyPattern",
    "bounded",
    "scan",
    "sentence_spans",
    "sentences",
    "trie_pattern",
    "words",
]

# Linear time: no quantifier here can retry over a run it has already crossed (a run of line
# breaks or spaces is consumed once; the look-ahead reads spaces and tabs only).
_SENTENCE_END = re.compile(
    r"(?<=[.!?。！？])[\"'”’)\]]*\s+|\n[ \t]*\n\s*|\n(?=[ \t]*(?:[-*•]|\d+[.)])\s)"
)
_WORD = re.compile(r"[a-z0-9]+(?:['’\-][a-z0-9]+)*")

_STOPWORD_TEXT = """
a an the and or but if then else of to in on at by for with from as into onto about over
under above below up down out off again further once here there when where why how all any
both each few more most other some such no nor not only own same so than too very can will
just should now is are was were be been being have has had having do does did doing i me my
myself we our ours ourselves you your yours yourself yourselves he him his himself she her
hers herself it its itself they them their theirs themselves what which who whom this that
these those am would could might must shall may also because while during before after
between through until against among per via let lets i'm i've i'd i'll you're it's that's
there's don't doesn't didn't can't cannot won't isn't aren't wasn't weren't yes well really
get got like one two three many much often usually always never every
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def bounded(text: Any) -> tuple[str, bool]:
    """``text`` cut to :data:`MAX_CHARS`, and whether it was cut; non-text gives ``""``."""
    if not isinstance(text, str):
        return "", False
    if len(text) > MAX_CHARS:
        return text[:MAX_CHARS], True
    return text, False


def sentences(text: str) -> list[str]:
    """Split text into sentences (and list items); good enough for English prose. A sentence
    longer than :data:`MAX_SENTENCE` characters comes in pieces of at most that length."""
    return [text[start:end] for start, end in sentence_spans(text)]


#: The longest piece of text one pattern is run on: a longer run-on sentence (a hostile text
#: without punctuation) is cut at a space into pieces of at most 1,000 characters, so that no
#: single regular-expression call holds the interpreter for more than a moment, even in a
#: worker thread. A phrase that straddles a cut is not seen whole.
MAX_SENTENCE = 1_000


def sentence_spans(text: str, max_length: int = MAX_SENTENCE) -> list[tuple[int, int]]:
    """The ``(start, end)`` of every sentence of ``text`` (surrounding whitespace left out; a
    sentence longer than ``max_length`` in pieces, see :data:`MAX_SENTENCE`)."""
    spans: list[tuple[int, int]] = []
    position = 0
    for found in _SENTENCE_END.finditer(text):
        _add_span(text, position, found.start(), spans, max_length)
        position = found.end()
    _add_span(text, position, len(text), spans, max_length)
    return spans


_EDGE_SPACE = re.compile(r"\s*")


def _add_span(
    text: str, start: int, end: int, spans: list[tuple[int, int]], max_length: int
) -> None:
    while True:
        found = _EDGE_SPACE.match(text, start, end)
        start = found.end() if found else start
        while end > start and text[end - 1].isspace():
            end -= 1
        if end <= start:
            return
        if end - start <= max_length:
            spans.append((start, end))
            return
        cut = text.rfind(" ", start + max_length // 2, start + max_length)
        cut = cut if cut > start else start + max_length
        spans.append((start, cut))
        start = cut


def scan(
    pattern: re.Pattern[str] | LazyPattern, text: str, spans: Iterable[tuple[int, int]]
) -> Iterator[re.Match[str]]:
    """Every match of ``pattern`` in ``text``, sentence by sentence (``spans``, as
    :func:`sentence_spans` gives them): bounded calls instead of one over the whole text."""
    compiled = pattern.compiled if isinstance(pattern, LazyPattern) else pattern
    for start, end in spans:
        yield from compiled.finditer(text, start, end)


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters and digits, with inner apostrophes and hyphens)."""
    return _WORD.findall(text.lower())


def stem(word: str) -> str:
    """A light suffix stripper, so that "teaches" meets "teach" and "guitarist" meets "guitar"."""
    for suffix in ("ingly", "ists", "ist", "ing", "ies", "ied", "ers", "er", "es", "ed", "s", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: -len(suffix)]
            return base + "y" if suffix in ("ies", "ied") else base
    return word


def content_words(text: str) -> set[str]:
    """Stemmed words that carry meaning (stop words and one-letter tokens removed)."""
    return {stem(w) for w in words(text) if w not in STOPWORDS and len(w) > 1}


def last_user_text(messages: Sequence[Any]) -> str:
    """The last user message's text (``""`` when there is none or the messages are malformed)."""
    try:
        for message in reversed(list(messages or ())):
            if getattr(message, "role", None) == "user":
                content = getattr(message, "content", "")
                return content if isinstance(content, str) else ""
    except TypeError:
        return ""
    return ""


def excerpt(text: str, limit: int = 160) -> str:
    """A one-line excerpt of ``text`` for a finding's evidence."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class LazyPattern:
    """A regular expression compiled on first use, so that importing a detector (which every new
    plugin manager does) stays cheap even when its patterns are large alternations."""

    __slots__ = ("_compiled", "_flags", "_source")

    def __init__(self, source: str, flags: int = 0):
        self._source = source
        self._flags = flags
        self._compiled: re.Pattern[str] | None = None

    @property
    def compiled(self) -> re.Pattern[str]:
        if self._compiled is None:
            self._compiled = re.compile(self._source, self._flags)
        return self._compiled

    def search(self, text: str) -> re.Match[str] | None:
        return self.compiled.search(text)

    def match(self, text: str) -> re.Match[str] | None:
        return self.compiled.match(text)

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        return self.compiled.finditer(text)

    def findall(self, text: str) -> list[Any]:
        return self.compiled.findall(text)

    def sub(self, replacement: str, text: str) -> str:
        return self.compiled.sub(replacement, text)

    def split(self, text: str, maxsplit: int = 0) -> list[str | Any]:
        return self.compiled.split(text, maxsplit=maxsplit)


def trie_pattern(terms: Iterable[str], space: str = "[ -]") -> str:
    """One regular expression (no group) matching any of ``terms``, written as a trie: terms that
    share a beginning share its characters in the pattern, so matching tries one branch per
    character instead of every term in turn (a long alternation of words is several times
    slower). A space in a term matches ``space`` (one space or hyphen: text normalised by
    :func:`~persona_plugins.guardrails.normalise.normalise` has single spaces), a hyphen an
    optional space or hyphen; other characters match themselves. Longer terms win where one term
    begins another."""
    trie: dict[str, Any] = {}
    for term in terms:
        if not term:
            continue
        node = trie
        for char in term:
            node = node.setdefault(char, {})
        node[""] = {}  # the end of a term

    def build(node: dict[str, Any]) -> str:
        ends = "" in node
        branches = [
            (space if char == " " else "[ -]?" if char == "-" else re.escape(char)) + build(child)
            for char, child in sorted(node.items())
            if char != ""
        ]
        if not branches:
            return ""
        if len(branches) == 1 and not ends:
            return branches[0]
        body = "(?:" + "|".join(branches) + ")"
        return body + "?" if ends else body

    return build(trie)
