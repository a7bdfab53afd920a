"""normalise: disguised text reads like plain text, and findings still point at the original."""

from __future__ import annotations

import pytest

from persona_plugins.guardrails.normalise import MAX_CHARS, normalise
from tests.guardrails.datasets import DISGUISES

PLAIN = "As a woman, I am unable to answer this question."


@pytest.mark.parametrize("name", list(DISGUISES))
def test_every_disguise_of_the_issue_reads_as_the_plain_text(name):
    disguised = DISGUISES[name](PLAIN)
    assert disguised != PLAIN
    assert normalise(disguised).text == normalise(PLAIN).text == PLAIN.lower()


@pytest.mark.parametrize(
    "text,expected",
    [
        ("un\u200bable", "unable"),  # zero-width space
        ("un\u200dable", "unable"),  # zero-width joiner
        ("un\u2060able", "unable"),  # word joiner
        ("un\u00adable", "unable"),  # soft hyphen
        ("\u202eunable\u202c", "unable"),  # bidi override and pop
        ("\ufeffunable", "unable"),  # byte-order mark
        ("unа\u0301ble", "unable"),  # Cyrillic a with a combining accent
        ("ｕｎａｂｌｅ", "unable"),  # full-width letters
        ("υnαblε", "unable"),  # Greek look-alikes
        ("UNABLE", "unable"),
        ("I\u2019m", "i'm"),  # curly apostrophe
        ("caf\u00e9", "cafe"),
        ("I am **unable**", "i am unable"),
        ("I am __unable__", "i am unable"),
        ("I am *un*able", "i am unable"),
        ("I am `unable`", "i am unable"),
        ("I am ~~not~~ unable", "i am not unable"),
        ("I  am\t\tnot\u00a0able", "i am not able"),
        ("one\n\n\n\ntwo", "one\n\ntwo"),
        ("one \n two", "one\ntwo"),
    ],
)
def test_each_step(text, expected):
    assert normalise(text).text == expected


@pytest.mark.parametrize(
    "text",
    ["snake_case_name", "2*3 = 6", "* a list item", "- another item", "a - b"],
)
def test_markers_that_are_content_are_kept(text):
    assert normalise(text).text == text


def test_case_is_kept_on_request():
    assert normalise("My name is ＡＬＩＣＥ.", casefold=False).text == "My name is ALICE."


def test_spans_map_back_to_the_original_text():
    original = "Honestly, as a w\u200bo\u00admаn I am **un\u200bable** to help."
    seen = normalise(original)
    assert seen.text == "honestly, as a woman i am unable to help."
    for word, raw in [("woman", "w\u200bo\u00admаn"), ("unable", "un\u200bable"), ("help", "help")]:
        start = seen.text.index(word)
        assert seen.original_slice(start, start + len(word)) == raw
    assert seen.original_span(0, len(seen.text)) == (0, len(original))


def test_plain_ascii_text_maps_one_to_one():
    seen = normalise(PLAIN)
    assert seen.original_span(5, 10) == (5, 10)
    assert seen.original_slice(5, 10) == PLAIN[5:10]


def test_anything_that_is_not_text_is_empty_and_long_text_is_capped():
    assert normalise(None).text == "" and normalise(42).text == ""  # type: ignore[arg-type]
    long = "a" * (MAX_CHARS + 10)
    seen = normalise(long)
    assert seen.truncated and len(seen.text) == MAX_CHARS
    short = normalise("abc", max_chars=2)
    assert (short.text, short.truncated) == ("ab", True)
