"""Answer extraction and comparison, so that agreeing candidates are recognised.

Two candidates "agree" when the answers extracted from them are equal after normalisation:
numbers compare by value (``1,000``, ``1000.0`` and ``$1000`` agree), option letters by letter
(``(B)``, ``B)``, ``answer is b``), yes/no by polarity, free text after lower-casing and stripping
punctuation.

Extractors are plain functions ``(text) -> str | None`` kept in a registry; the ``answer_format``
config field picks one (``auto`` decides from the question), and plugins add more through the
``register_answer_extractors`` hook.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import pluggy

from persona_plugins.errors import ConfigError
from persona_plugins.hookcalls import register_all
from persona_plugins.hookspecs import hookimpl

if TYPE_CHECKING:
    from persona_plugins.results import Candidate

__all__ = [
    "BUILTIN_EXTRACTORS",
    "Extractor",
    "answers_agree",
    "asks_for_number",
    "collect_extractors",
    "extract_answers",
    "extract_choice",
    "extract_number",
    "extract_text",
    "extract_yes_no",
    "guess_answer_format",
]

Extractor = Callable[[str], "str | None"]

# Phrases that introduce a final answer; the text after the last one is preferred.
_FINAL_MARKERS = re.compile(
    r"(?:final answer|the answer is|answer is|answer:|therefore,?|so the answer is|thus,?)",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_CHOICE_AFTER_MARKER = re.compile(r"\(?\b([A-F])\b\)?", re.IGNORECASE)
_CHOICE_ANYWHERE = re.compile(r"\(([A-F])\)|\b([A-F])\)|\boption\s+([A-F])\b|\b([A-F])\.\s", re.I)
_YES_NO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def _tail(text: str) -> str:
    """The part after the last final-answer marker, or the whole text."""
    matches = list(_FINAL_MARKERS.finditer(text))
    return text[matches[-1].end() :] if matches else text


def _after_marker(text: str, pattern: re.Pattern[str]) -> str | None:
    """The first group of ``pattern``'s first match after the last final-answer marker; None
    without a marker or a match there."""
    tail = _tail(text)
    match = pattern.search(tail) if tail is not text else None
    return str(match.group(1)) if match else None


def _format_number(raw: str) -> str | None:
    """A number in one canonical spelling: integers exactly (however long: 200! has 375 digits),
    other values to six significant digits; None for what is not a number."""
    cleaned = raw.replace("$", "").replace(",", "")
    negative = cleaned.startswith("-")
    digits = cleaned.lstrip("-")
    whole, _, fraction = digits.partition(".")
    if not (whole or fraction) or not (whole + fraction).isdigit():
        return None
    if not fraction.strip("0"):  # an integer, exactly: no float conversion to overflow
        try:  # int() reads any script's digits ("١٢" is 12)
            whole = str(int(whole))
        except ValueError:  # past the interpreter's digit limit: compared as written
            whole = whole.lstrip("0") or "0"
        return f"-{whole}" if negative and whole != "0" else whole
    value = float(cleaned)  # has a fractional part: finite unless absurdly long
    if value != value or value in (float("inf"), float("-inf")):
        return None
    return f"{value:.6g}"


def extract_number(text: str) -> str | None:
    """The number in the final answer (the first one after a final-answer marker, else the last).

    >>> extract_number("Step 1: 3 + 4 = 7. The answer is $1,200.")
    '1200'
    """
    tail = _tail(text)
    found = _NUMBER.findall(tail)
    if found and tail is not text:
        return _format_number(found[0])
    found = _NUMBER.findall(text)
    return _format_number(found[-1]) if found else None


def extract_choice(text: str) -> str | None:
    """An option letter A-F.

    >>> extract_choice("Looking at each option... the answer is (C).")
    'C'
    """
    marked = _after_marker(text, _CHOICE_AFTER_MARKER)
    if marked is not None:
        return marked.upper()
    matches = list(_CHOICE_ANYWHERE.finditer(text))
    if matches:
        groups = [g for g in matches[-1].groups() if g]
        return groups[0].upper()
    stripped = text.strip().strip(string.punctuation + " ")
    return stripped.upper() if len(stripped) == 1 and stripped.upper() in "ABCDEF" else None


def extract_yes_no(text: str) -> str | None:
    """``yes`` or ``no``, preferring the final answer.

    >>> extract_yes_no("Frost is common in December. So the answer is yes.")
    'yes'
    """
    marked = _after_marker(text, _YES_NO)
    if marked is not None:
        return marked.lower()
    found = [str(m).lower() for m in _YES_NO.findall(text)]
    if not found:
        return None
    # "Yes, because ..." answers first; otherwise the last yes/no is the conclusion.
    return found[0] if text.strip().lower().startswith(found[0]) else found[-1]


def extract_text(text: str) -> str | None:
    """The final answer as normalised free text (lower case, no punctuation, single spaces)."""
    tail = _tail(text).strip() or text.strip()
    lines = [line for line in tail.splitlines() if line.strip()]
    if not lines:
        return None
    table = str.maketrans("", "", string.punctuation)
    normalised = " ".join(lines[0].lower().translate(table).split())
    return normalised or None


BUILTIN_EXTRACTORS: dict[str, Extractor] = {
    "number": extract_number,
    "choice": extract_choice,
    "yes_no": extract_yes_no,
    "text": extract_text,
}

_OPTIONS_IN_QUESTION = re.compile(r"(?:^|\s|\()\(?[A-E]\)\s*\S", re.MULTILINE)
_YES_NO_QUESTION = re.compile(
    r"^\s*(is|are|was|were|do|does|did|can|could|will|would|should|has|have|had)\b", re.I
)
# A question asks for a number when it asks how many/much/..., to compute something, for a
# numeric quantity by name, or poses arithmetic. Every alternative is a fixed word sequence with
# single bounded gaps, so matching is linear in the question's length.
_NUMBER_QUESTION = re.compile(
    r"\bhow\s+(?:many|much|old|long|far|tall|high|big|fast|often|heavy|large|deep|wide)\b"
    r"|\b(?:calculate|compute|evaluate|solve|simplify|convert|estimate)\b"
    r"|\bwhat\s+(?:is|was|are|were|will\s+be)\s+(?:the\s+)?(?:exact\s+|approximate\s+)?"
    r"(?:value|sum|total|product|difference|quotient|remainder|number|count|amount|average|mean|"
    r"median|percentage|percent|ratio|probability|area|volume|perimeter|length|distance|speed|"
    r"cost|price|rate|square\s+root|result|answer)\b"
    r"|\bin\s+what\s+year\b|\bwhat\s+year\b|\bhow\s+many\b"
    r"|\d\s*[-+*/×÷^%]\s*\d|\d\s*!"
    r"|\b(?:plus|minus|times|divided\s+by|squared|cubed)\b",
    re.IGNORECASE,
)
#: Longest question text the format guess reads (the end of a long conversation turn).
_QUESTION_CAP = 4000


def asks_for_number(question: str) -> bool:
    """True when the question asks for a number (how many, compute, the value of, arithmetic).

    >>> asks_for_number("How many apples are left?"), asks_for_number("Who wrote Hamlet?")
    (True, False)
    """
    return _NUMBER_QUESTION.search(question[-_QUESTION_CAP:]) is not None


def guess_answer_format(question: str, texts: Sequence[str] = ()) -> str:
    """Guess the answer format from the question: ``choice`` when it lists options, ``yes_no``
    for a yes/no question, ``number`` only when the question asks for a number (and every
    candidate states one), else ``text``. Free text agrees only when the final answers match,
    so in doubt the candidates are judged."""
    question = question[-_QUESTION_CAP:]
    if len(_OPTIONS_IN_QUESTION.findall(question)) >= 2:
        return "choice"
    last_line = question.strip().splitlines()[-1] if question.strip() else ""
    if _YES_NO_QUESTION.match(last_line) or re.search(r"\byes or no\b", question, re.I):
        return "yes_no"
    if asks_for_number(question) and all(extract_number(t) is not None for t in texts):
        return "number"
    return "text"


def answers_agree(answers: Sequence[str | None]) -> bool:
    """True when every answer was extracted and all are equal."""
    return bool(answers) and all(a is not None for a in answers) and len(set(answers)) == 1


def collect_extractors(pm: pluggy.PluginManager) -> dict[str, Extractor]:
    """Every extractor registered through ``register_answer_extractors``, by name."""
    extractors: dict[str, Extractor] = {}

    def register(name: str, extractor: Extractor) -> None:
        if not isinstance(name, str) or not callable(extractor):
            raise ConfigError("register_answer_extractors: register() takes a name and a function")
        extractors[name] = extractor

    register_all(pm, "register_answer_extractors", register)
    return extractors


def extract_answers(
    extractors: dict[str, Extractor],
    answer_format: str,
    question: str,
    candidates: Sequence[Candidate],
) -> None:
    """Fill in each candidate's ``answer`` with the extractor ``answer_format`` names (``auto``:
    guessed from the question), unless a plugin already set it."""
    if not extractors:
        return
    name = answer_format
    try:  # no answer text may break a turn: at worst the candidates are judged
        if name == "auto":
            name = guess_answer_format(question, [c.text for c in candidates])
    except Exception:
        return
    extractor = extractors.get(name)
    if extractor is None:
        return
    for candidate in candidates:
        if candidate.answer is None:
            try:
                candidate.answer = extractor(candidate.text)
            except Exception:  # a broken extractor only loses the agreement shortcut
                candidate.answer = None


@hookimpl
def register_answer_extractors(register: Callable[[str, Extractor], None]) -> None:
    for name, extractor in BUILTIN_EXTRACTORS.items():
        register(name, extractor)
