"""Answer extraction: agreeing candidates are recognised whatever their wording."""

from __future__ import annotations

import pytest

from persona_plugins import Completion, PersonaPipeline, hookimpl
from persona_plugins.answers import (
    answers_agree,
    extract_choice,
    extract_number,
    extract_text,
    extract_yes_no,
    guess_answer_format,
)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("3 + 4 = 7. The answer is 7.", "7"),
        ("She makes 9 * 2 = $18 a day. The answer is $18.", "18"),
        ("Total: 1,250 dollars", "1250"),
        ("The answer is 12.50", "12.5"),
        ("The answer is 3.0", "3"),
        ("It drops to -4 degrees", "-4"),
        ("no digits here", None),
    ],
)
def test_extract_number(text, expected):
    assert extract_number(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("The answer is (C).", "C"),
        ("So the answer is b", "B"),
        ("I compared every option; B) fits best.", "B"),
        ("(A) is wrong, (D) is right", "D"),
        ("E", "E"),
        ("none of them", None),
    ],
)
def test_extract_choice(text, expected):
    assert extract_choice(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Yes, frost is common in December.", "yes"),
        ("Frost is rare then. So the answer is no.", "no"),
        ("It is not likely... the answer is Yes", "yes"),
        ("Perhaps.", None),
    ],
)
def test_extract_yes_no(text, expected):
    assert extract_yes_no(text) == expected


def test_extract_text_normalises_case_and_punctuation():
    assert extract_text("The answer is: Paris!") == extract_text("the answer is paris")
    assert extract_text("   ") is None


def test_guess_answer_format():
    assert guess_answer_format("Pick one. Answer Choices: (A) 1 (B) 2 (C) 3") == "choice"
    assert guess_answer_format("Is it common to see frost in May?") == "yes_no"
    assert guess_answer_format("How many eggs?", ["It is 4.", "The answer is 4"]) == "number"
    assert guess_answer_format("Name the capital of France.", ["Paris", "Paris."]) == "text"


def test_answers_agree():
    assert answers_agree(["7", "7"])
    assert not answers_agree(["7", "8"])
    assert not answers_agree(["7", None])
    assert not answers_agree([])


async def test_a_plugin_extractor_is_used_when_configured(plugin_manager):
    class Colour:
        @hookimpl
        def register_answer_extractors(self, register):
            register("colour", lambda text: "red" if "red" in text.lower() else None)

    class Model:
        async def complete(self, messages, **settings):
            persona = messages[0].role == "system"
            return Completion(text="Crimson red." if persona else "It's RED")

    plugin_manager.register(Colour())  # the fixture's manager is fresh for each test
    result = await PersonaPipeline(
        Model(),
        plugin_manager=plugin_manager,
        persona="chef",
        ensemble="jekyll_hyde",
        answer_format="colour",
    ).run("What colour is a ripe tomato?")
    assert result.model_calls == 2, "the candidates agree on 'red': no judge call"
    assert [c.answer for c in result.candidates] == ["red", "red"]


def test_an_unknown_answer_format_is_a_config_error(plugin_manager):
    from persona_plugins import ConfigError

    class Model:
        async def complete(self, messages, **settings):
            return Completion(text="x")

    with pytest.raises(ConfigError, match="answer_format: 'colour' is not registered"):
        PersonaPipeline(Model(), plugin_manager=plugin_manager, answer_format="colour")
