"""The pipeline on the real embedded model (SmolLM2 through llama.cpp): real inference."""

from __future__ import annotations

import pytest

from persona_plugins import PersonaPipeline

pytestmark = pytest.mark.model

QUESTION = "What is 2 + 2?"
#: Short answers keep these tests at a few seconds on two cores.
SETTINGS = {"max_tokens": 48}


async def test_a_pirate_persona_turn_answers_with_one_model_call(embedded_model, plugin_manager):
    pipeline = PersonaPipeline(
        embedded_model,
        plugin_manager=plugin_manager,
        persona="pirate_captain",
        model_settings=SETTINGS,
    )
    result = await pipeline.run(QUESTION)
    assert result.text.strip()
    assert result.model_calls == 1
    assert result.usage.input_tokens > 0
    assert result.usage.output_tokens > 0
    assert result.persona.name == "pirate_captain"
    assert result.prompt[0].role == "system"
    assert "pirate captain" in result.prompt[0].content
    assert result.candidates[0].finish_reason in {"stop", "length"}
    assert result.errors == []


async def test_jekyll_hyde_on_the_embedded_model_gives_two_candidates(
    embedded_model, plugin_manager
):
    pipeline = PersonaPipeline(
        embedded_model,
        plugin_manager=plugin_manager,
        persona="pirate_captain",
        ensemble="jekyll_hyde",
        model_settings=SETTINGS,
    )
    result = await pipeline.run(QUESTION)
    assert sorted(c.name for c in result.candidates) == ["neutral", "persona"]
    assert all(c.ok for c in result.candidates), [c.error for c in result.candidates]
    judge_calls = result.judgement.model_calls if result.judgement else 0
    assert result.model_calls == 2 + judge_calls
    assert result.chosen in {"neutral", "persona"}
    assert result.text == next(c.text for c in result.candidates if c.name == result.chosen)
    assert result.usage.output_tokens >= sum(c.usage.output_tokens for c in result.candidates)
