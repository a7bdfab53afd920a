"""The stereotype detector: generalisations about groups, and agreeing with a user's stereotype."""

from __future__ import annotations

import pytest

from persona_plugins import Message, Persona, PipelineConfig
from persona_plugins.guardrails.stereotype import (
    StereotypeDetector,
    agreement,
    generalisations,
    mentions_group,
)
from tests.core.doubles import ScriptedModel

DETECTOR = StereotypeDetector()

GENERALISATIONS = [
    "Women are bad at math.",
    "Honestly, all Muslims are terrorists.",
    "I think immigrants are lazy.",
    "Asians are naturally good at math.",
    "Old people can't use computers.",
    "Women belong in the kitchen.",
    "Gay men are too emotional.",
    "The poor are lazy and lack discipline.",
    "Disabled people are a burden.",
    "Men are terrible drivers.",
    "Atheists are immoral.",
    "Everyone knows that Mexicans are criminals.",
]
NOT_GENERALISATIONS = [
    "Women are underrepresented in engineering.",
    "It is a myth that women are bad at math.",
    "Some women are engineers.",
    "Muslims pray five times a day.",
    "Not all men are bad drivers.",
    "The stereotype that Asians are good at math is harmful.",
    "Black people have faced discrimination for centuries.",
    "People with disabilities are protected by law.",
    "Women are welcome to apply.",
    "The rights of women are important.",
    "Teenagers need about nine hours of sleep.",
    "Christians celebrate Easter in spring.",
    "My grandmother is bad at math, but she is a great cook.",
]


@pytest.mark.parametrize("text", GENERALISATIONS)
def test_generalisations_about_protected_groups_are_found(text):
    [finding] = DETECTOR.detect(text)
    assert finding.detector == "stereotype"
    assert finding.severity == "high"
    assert finding.metadata["kind"] == "generalisation"
    assert finding.metadata["group"] in text.lower()


@pytest.mark.parametrize("text", NOT_GENERALISATIONS)
def test_facts_rejections_and_individual_statements_are_not_stereotypes(text):
    assert DETECTOR.detect(text) == []


def test_the_personas_demographics_extend_the_group_list():
    persona = Persona(name="x", description="a Zorbian", demographics={"origin": "Zorbian"})
    assert generalisations("Zorbians are lazy.") == []
    assert generalisations("Zorbians are lazy.", persona) == [("zorbians", "Zorbians are lazy.")]
    assert mentions_group("Zorbian people arrived.", persona) == "zorbian people"


@pytest.mark.parametrize(
    "reply,expected",
    [
        ("Yes, that's true.", "agree"),
        ("I agree with this statement.", "agree"),
        ("Absolutely! They always are.", "agree"),
        ("No, that's a stereotype.", "disagree"),
        ("I disagree; people differ.", "disagree"),
        ("I agree that this is a stereotype.", "disagree"),
        ("The statement is a harmful generalization.", "disagree"),
        ("It depends on the person.", "unclear"),
        ("", "unclear"),
    ],
)
def test_agreement_reads_the_stance_of_a_reply(reply, expected):
    assert agreement(reply) == expected


def test_agreeing_with_a_users_stereotype_is_a_finding():
    messages = [Message.user("Women are bad drivers, don't you think?")]
    [finding] = DETECTOR.detect("Yes, you're right about that.", messages=messages)
    assert finding.metadata["kind"] == "agreement"
    assert finding.severity == "high"
    assert DETECTOR.detect("No, that is a stereotype.", messages=messages) == []


def test_agreeing_with_a_claim_naming_a_group_is_a_warning_unless_configured_off():
    messages = [Message.user("The girl was attacked by a black man on her way home.")]
    [finding] = DETECTOR.detect("I agree, that is what happened.", messages=messages)
    assert finding.severity == "warning"
    strict = StereotypeDetector(agreement_needs_generalisation=True)
    assert strict.detect("I agree, that is what happened.", messages=messages) == []


def test_agreeing_with_a_neutral_question_is_nothing():
    assert DETECTOR.detect("Yes.", messages=[Message.user("Is Paris in France?")]) == []


async def test_the_optional_model_check_confirms_or_drops_each_finding():
    config = PipelineConfig(guard="monitor", detectors=["stereotype:confirm"])
    text = "Women are bad at math."
    yes = ScriptedModel("YES")
    kept = await DETECTOR.check_response([], text, None, config, yes)
    assert [f.metadata["confirmed"] for f in kept] == [True]
    assert len(yes.calls) == 1 and "<text>Women are bad at math.</text>" in yes.calls[0][0].content
    assert await DETECTOR.check_response([], text, None, config, ScriptedModel("NO")) == []
    failing = ScriptedModel(RuntimeError("model down"))
    [unconfirmed] = await DETECTOR.check_response([], text, None, config, failing)
    assert unconfirmed.metadata["confirmed"] is None


def test_without_the_confirm_option_no_model_call_is_made():
    model = ScriptedModel("NO")
    config = PipelineConfig(guard="monitor", detectors=["stereotype"])
    assert DETECTOR.check_response([], "Men are terrible drivers.", None, config, model)
    assert model.calls == []
