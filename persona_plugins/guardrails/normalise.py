"""One normalisation before every detector, so that disguised text reads like plain text.

A response can defeat a pattern without changing what a reader sees: a zero-width space inside
"un\u200bable", a soft hyphen, a Cyrillic "а" for a Latin "a", full-width letters, ``**unable**``.
:func:`normalise` undoes all of these at once, in this order, character by character:

1. **format characters removed**: Unicode category ``Cf`` (zero-width space, joiner and non-joiner,
   word joiner, soft hyphen, byte-order mark, the bidirectional controls) and combining marks
   (category ``Mn``: accents added to a letter, variation selectors);
2. **NFKC**: compatibility forms become their plain letters (full-width ``ｕｎａｂｌｅ``,
   ligatures, superscripts, non-breaking and other spaces);
3. **confusables folded to ASCII**: Cyrillic and Greek letters that look like Latin ones
   (:data:`CONFUSABLES`), Latin letters with diacritics (``é`` -> ``e``), curly quotes and
   apostrophes, and dashes;
4. **markdown markers stripped**: ``*``, ``_``, ``~`` and backticks of emphasis and inline code
   (a ``*`` or ``-`` that starts a list item, ``2*3`` and ``snake_case`` are kept);
5. **whitespace collapsed**: a run of spaces and tabs becomes one space, a run with one line break
   ``"\\n"``, a run with more ``"\\n\\n"`` (so paragraphs still end sentences);
6. **case folded** (``str.casefold``), unless ``casefold=False``.

The result keeps an **offset map**: :meth:`Normalised.original_span` turns a span of the normalised
text back into the span of the original text it came from, so that a finding's evidence quotes what
the user actually saw. Every step is linear in the length of the text, and only the first
``max_chars`` characters (default :data:`MAX_CHARS`) are read.

The folding is meant for English detectors: Cyrillic or Greek prose comes out as a mix of Latin
and other letters, which no English pattern matches, and accents are dropped. Third-party
detectors can use it in the same way::

    from persona_plugins.guardrails.normalise import normalise

    seen = normalise("As a woman, I am **un\\u00adable** to help.")
    assert seen.text == "as a woman, i am unable to help."
    start = seen.text.index("unable")
    assert seen.original_slice(start, start + len("unable")) == "un\\u00adable"
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass, field
from functools import lru_cache

__all__ = ["CONFUSABLES", "MAX_CHARS", "MAX_USER_CHARS", "Normalised", "normalise"]

#: The most characters of a text :func:`normalise` reads (the detectors' cap): 100,000 characters,
#: about 20,000 words. The rest is not checked; :attr:`Normalised.truncated` says so.
MAX_CHARS = 100_000

#: The most characters of the user's message a detector reads (the question a response answers,
#: or a claim the response may agree with): 4,000.
MAX_USER_CHARS = 4_000

# fmt: off
#: Letters of other scripts that look like ASCII ones, folded to them (lower and upper case).
CONFUSABLES: dict[str, str] = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "һ": "h",
    "ԁ": "d", "ԛ": "q", "ԝ": "w", "ӏ": "l", "ɡ": "g", "ь": "b", "п": "n", "г": "r",
    "А": "A", "В": "B", "Е": "E", "Ё": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
    "С": "C", "Т": "T", "У": "Y", "Х": "X", "Ѕ": "S", "І": "I", "Ї": "I", "Ј": "J", "Һ": "H",
    "Ԁ": "D", "Ԛ": "Q", "Ԝ": "W", "Ӏ": "I",
    # Greek
    "α": "a", "β": "b", "γ": "y", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o",
    "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ϲ": "c", "ϳ": "j",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
    # Latin and punctuation look-alikes
    "ı": "i", "ȷ": "j", "ɑ": "a", "ɩ": "i", "ʏ": "y", "ᴀ": "a", "ʀ": "r", "ᴇ": "e", "ɪ": "i",
    "ᴏ": "o", "ᴜ": "u", "ꜱ": "s", "ᴛ": "t", "ɴ": "n", "ʟ": "l", "ᴍ": "m", "ʜ": "h", "ᴅ": "d",
    "ʼ": "'", "‘": "'", "’": "'", "‛": "'", "′": "'", "`": "'", "´": "'",
    "“": '"', "”": '"', "„": '"', "‟": '"', "″": '"', "«": '"', "»": '"',
    "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-", "―": "-", "−": "-", "﹣": "-",
}
# fmt: on

# Invisible characters outside category Cf that are used the same way.
_INVISIBLE = frozenset("\u034f\u115f\u1160\u3164\uffa0\u180e")
_MARKDOWN = frozenset("*_~`")

# What is not copied as it is: non-ASCII characters, markdown markers, whitespace other than one
# space or one line break. One alternation of single characters and one bounded run: linear time.
_SPECIAL = re.compile(r"[^\x00-\x7f]|[*_~`]|[\t\r\f\v]|[ \n]{2,}")


@lru_cache(maxsize=4096)
def _fold_char(char: str, casefold: bool) -> str:
    """What one non-ASCII character becomes (``""`` for an invisible one)."""
    if char in _INVISIBLE:
        return ""
    category = unicodedata.category(char)
    if category in ("Cf", "Mn", "Me", "Cc", "Cs", "Co", "Cn") and not char.isspace():
        return ""
    if char.isspace():
        return "\n" if char in "\u2028\u2029\x85" else " "
    out = []
    for piece in unicodedata.normalize("NFKC", char):
        piece = CONFUSABLES.get(piece, piece)
        if not piece.isascii() and piece.isalpha():
            # Latin letters with diacritics: the base letter (é -> e); other scripts stay.
            base = "".join(
                c for c in unicodedata.normalize("NFKD", piece) if not unicodedata.combining(c)
            )
            piece = base if base and base.isascii() else CONFUSABLES.get(base, piece)
        out.append(piece)
    text = "".join(out)
    return text.casefold() if casefold else text


@dataclass(frozen=True)
class Normalised:
    """A normalised text and the way back to the original (see :func:`normalise`).

    ``text`` is the normalised text, ``original`` the text it was made from (after the cap),
    ``truncated`` whether the input was longer than the cap.
    """

    text: str
    original: str
    truncated: bool = False
    # (normalised start, original start, original end, copied as it is): one entry per piece.
    _pieces: tuple[tuple[int, int, int, bool], ...] = field(default=(), repr=False)
    _starts: tuple[int, ...] = field(default=(), repr=False)

    def original_index(self, index: int, *, end: bool = False) -> int:
        """The position in :attr:`original` of position ``index`` of :attr:`text` (with
        ``end=True``, of the end of the character before ``index``)."""
        if not self._pieces:
            return max(0, min(index, len(self.original)))
        if end:
            if index <= 0:
                return 0
            at = bisect_right(self._starts, index - 1) - 1
            start, o_start, o_end, copied = self._pieces[at]
            return o_start + (index - start) if copied else o_end
        if index >= len(self.text):
            return len(self.original)
        at = bisect_right(self._starts, index) - 1
        start, o_start, _, copied = self._pieces[at]
        return o_start + (index - start) if copied else o_start

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The span of :attr:`original` that the span ``start:end`` of :attr:`text` came from."""
        return self.original_index(start), max(
            self.original_index(start), self.original_index(end, end=True)
        )

    def original_slice(self, start: int, end: int) -> str:
        """The original text behind ``text[start:end]``."""
        o_start, o_end = self.original_span(start, end)
        return self.original[o_start:o_end]


def normalise(text: object, *, max_chars: int = MAX_CHARS, casefold: bool = True) -> Normalised:
    """Normalise ``text`` for matching (see the module docstring); anything that is not a string
    gives an empty result, never an exception.

    :param max_chars: read at most this many characters of ``text``.
    :param casefold: fold case (the default); ``False`` keeps the case of every letter.
    """
    if not isinstance(text, str):
        return Normalised("", "")
    return _normalise(text, max_chars, casefold)


# The detectors of one guard check read the same response: the last few results are kept, so the
# text is normalised once, not once per detector.
@lru_cache(maxsize=16)
def _normalise(text: str, max_chars: int, casefold: bool) -> Normalised:
    truncated = len(text) > max_chars
    original = text[:max_chars] if truncated else text
    if original.isascii() and _SPECIAL.search(original) is None:  # the common case: no copy
        plain = original.lower() if casefold else original
        return Normalised(plain, original, truncated)
    out: list[str] = []
    pieces: list[tuple[int, int, int, bool]] = []
    length = 0  # of the normalised text so far
    last = ""  # its last character

    def copy(o_start: int, o_end: int) -> None:
        nonlocal length, last
        if o_start >= o_end:
            return
        chunk = original[o_start:o_end]
        if last in (" ", "\n") and chunk[0] == " ":  # a space after a collapsed run
            o_start += 1
            chunk = chunk[1:]
            if not chunk:
                return
        pieces.append((length, o_start, o_end, True))
        out.append(chunk.lower() if casefold else chunk)
        length += len(chunk)
        last = chunk[-1]

    def put(replacement: str, o_start: int, o_end: int) -> None:
        nonlocal length, last
        if not replacement or (replacement.isspace() and last in (" ", "\n", "")):
            return  # an invisible character, leading whitespace, or whitespace after whitespace
        pieces.append((length, o_start, o_end, False))
        out.append(replacement)
        length += len(replacement)
        last = replacement[-1]

    position = 0
    for found in _SPECIAL.finditer(original):
        start, end = found.span()
        copy(position, start)
        position = end
        chunk = found.group()
        if chunk[0] in _MARKDOWN:
            put(_markdown(original, start, chunk), start, end)
        elif chunk.isspace():
            breaks = chunk.count("\n") + chunk.count("\u2028") + chunk.count("\u2029")
            put("\n\n" if breaks > 1 else "\n" if breaks else " ", start, end)
        else:
            put(_fold_char(chunk, casefold), start, end)
    copy(position, len(original))
    return Normalised("".join(out), original, truncated, tuple(pieces), tuple(p[0] for p in pieces))


def _markdown(text: str, at: int, char: str) -> str:
    """What a markdown marker at ``text[at]`` becomes: itself when it is content (a list bullet,
    ``2*3``, ``snake_case``), else nothing; a backtick is an apostrophe inside a word."""
    before = text[at - 1] if at > 0 else "\n"
    after = text[at + 1] if at + 1 < len(text) else "\n"
    if char == "`":
        return "'" if before.isalpha() and after.isalpha() and before.isascii() else ""
    if char == "*" and before in "\n " and after in " \t":
        return "*"  # a list bullet or a spaced multiplication
    if char == "*" and before.isdigit() and after.isdigit():
        return "*"
    if char == "_" and before.isalnum() and after.isalnum():
        return "_"
    return ""
