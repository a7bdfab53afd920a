"""Generated personas: the model writes one per question; junk falls back and says why."""

from __future__ import annotations

import pytest

from persona_plugins import Completion, PersonaPipeline
from persona_plugins.selection import PERSONA_GENERATION_PROMPT, parse_generated_persona


class WriterModel:
    def __init__(self, persona_reply):
        self.persona_reply = persona_reply
        self.calls: list[str] = []

    async def complete(self, messages, **settings):
        if messages[0].content == PERSONA_GENERATION_PROMPT:
            self.calls.append("writer")
            if isinstance(self.persona_reply, Exception):
                raise self.persona_reply
            return Completion(text=self.persona_reply)
        self.calls.append("answer")
        return Completion(text="The answer is 4.")


async def test_the_model_writes_the_persona_then_answers_as_it(plugin_manager):
    model = WriterModel("An experienced primary-school arithmetic teacher.")
    result = await PersonaPipeline(
        model, plugin_manager=plugin_manager, persona_mode="generated"
    ).run("What is 2 + 2?")
    assert model.calls == ["writer", "answer"]
    assert result.persona_source == "generated"
    assert result.persona.description == "An experienced primary-school arithmetic teacher"
    assert result.system_prompt.startswith("You are An experienced primary-school")


@pytest.mark.parametrize(
    "reply", ["", "I'm sorry, I cannot help with that.", "word " * 60, RuntimeError("down")]
)
async def test_unusable_output_falls_back_to_the_configured_persona(plugin_manager, reply):
    model = WriterModel(reply)
    result = await PersonaPipeline(
        model, plugin_manager=plugin_manager, persona_mode="generated", persona="math_teacher"
    ).run("What is 2 + 2?")
    assert result.persona_source == "fallback"
    assert result.persona.name == "math_teacher"
    assert "generated persona unusable" in result.persona_note
    assert result.text == "The answer is 4."


async def test_unusable_output_without_a_configured_persona_answers_neutrally(plugin_manager):
    result = await PersonaPipeline(
        WriterModel(""), plugin_manager=plugin_manager, persona_mode="generated"
    ).run("What is 2 + 2?")
    assert result.persona is None and "using no persona" in result.persona_note


@pytest.mark.parametrize(
    "reply,description",
    [
        ('You are "a veteran air-traffic controller".', "a veteran air-traffic controller"),
        ("Sure! Here is the persona: an expert baker.", "an expert baker"),
        ("Mathematician", "a mathematician"),
    ],
)
def test_parse_generated_persona(reply, description):
    assert parse_generated_persona(reply) == (description, None)
