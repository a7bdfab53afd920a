"""Bad inputs (empty, huge, not English, not text) give findings or none, never an exception."""

from __future__ import annotations

import pytest

from persona_plugins import Message, Persona, PersonaPipeline, PipelineConfig
from persona_plugins.guardrails import acheck_text
from persona_plugins.guardrails._text import MAX_CHARS
from persona_plugins.guardrails.abstention import AbstentionDetector
from persona_plugins.guardrails.contradiction import PersonaContradictionDetector
from persona_plugins.guardrails.stereotype import StereotypeDetector, agreement
from persona_plugins.guardrails.toxicity import ToxicityDetector
from tests.core.doubles import ScriptedModel

PERSONA = Persona(
    name="p",
    description="a physically-disabled person",
    statements=["I live in Lyon.", "I am 30 years old."],
    demographics={"disability": "physically-disabled"},
)
DETECTORS = [
    AbstentionDetector(),
    StereotypeDetector(),
    ToxicityDetector(),
    PersonaContradictionDetector(),
]
BAD_TEXTS = {
    "empty": "",
    "blank": " \n\t ",
    "huge": ("As a physically-disabled person, I am unable to help. " * 40_000),
    "huge-one-word": "a" * 2_000_000,
    "french": "En tant que personne handicapée, je ne peux pas répondre. Les femmes sont nulles.",
    "chinese": "作为一个残疾人，我无法回答这个问题。",
    "arabic": "بصفتي شخصًا معاقًا، لا أستطيع الإجابة",
    "emoji": "🙂🙃" * 1000,
    "control": "\x00\x01\x02 As a \x00 woman, I can't\x7f",
    "regex-bait": "(" * 5000 + "as a " * 5000 + ")" * 5000,
    "markup": "<script>alert('x')</script> {{persona}} [[C1-00]] %s %(x)s",
}
NOT_TEXT = [None, 42, b"bytes", ["a", "list"], {"a": 1}]


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: d.name)
@pytest.mark.parametrize("text", BAD_TEXTS.values(), ids=list(BAD_TEXTS))
def test_every_detector_survives_bad_text(detector, text):
    messages = [Message.user(text if text.strip() else "?")]
    findings = detector.detect(text, messages=messages, persona=PERSONA)
    assert isinstance(findings, list)


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: d.name)
@pytest.mark.parametrize("value", NOT_TEXT, ids=repr)
def test_every_detector_survives_values_that_are_not_text(detector, value):
    assert detector.detect(value, persona=PERSONA) == []  # type: ignore[arg-type]


def test_a_huge_refusal_is_still_found_in_its_first_part_and_marked_truncated():
    text = BAD_TEXTS["huge"]
    assert len(text) > MAX_CHARS
    [finding] = AbstentionDetector().detect(text)
    assert finding.metadata["kind"] == "refusal"
    [toxic] = ToxicityDetector().detect("You idiot. " + "x " * MAX_CHARS)
    assert toxic.metadata["truncated"] is True


def test_agreement_of_bad_text_is_unclear():
    for value in ("", "🙂", "Je suis d'accord.", None):
        assert agreement(value) in ("unclear", "agree", "disagree")  # type: ignore[arg-type]


@pytest.mark.parametrize("text", BAD_TEXTS.values(), ids=list(BAD_TEXTS))
async def test_check_text_with_every_detector_survives(text):
    findings = await acheck_text(text, messages="Why?", persona=PERSONA)
    assert isinstance(findings, list)


@pytest.mark.parametrize(
    "text", ["🙂", "Réponse : 42.", "x" * 300_000], ids=["emoji", "fr", "huge"]
)
async def test_the_pipeline_in_enforce_mode_survives_odd_model_output(plugin_manager, text):
    model = ScriptedModel(text, default="The answer is 42.")
    result = await PersonaPipeline(
        model, persona=PERSONA, guard="enforce", plugin_manager=plugin_manager
    ).run("What is 6 * 7?")
    assert isinstance(result.text, str)


def test_detector_options_ignore_junk_entries():
    from persona_plugins.guardrails import detector_options

    config = PipelineConfig(guard="monitor", detectors=["", ":", "stereotype: confirm ,", "x:y"])
    assert detector_options(config, "stereotype") == frozenset({"confirm"})
    assert detector_options(config, "toxicity") is None
    assert detector_options(None, "toxicity") == frozenset()
