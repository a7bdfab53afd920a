"""Jekyll & Hyde and SPP end to end on the real embedded model, traced."""

from __future__ import annotations

import pytest

from persona_plugins import PersonaPipeline

pytestmark = pytest.mark.model


async def test_jekyll_hyde_on_the_embedded_model_is_traced_with_verdicts(
    embedded_model, memory_tracing
):
    provider, exporter = memory_tracing
    pipeline = PersonaPipeline(
        embedded_model,
        persona="math_teacher",
        ensemble="jekyll_hyde",
        model_settings={"max_tokens": 48},
        tracer_provider=provider,
    )
    result = await pipeline.run("Is a tomato a fruit? Answer yes or no.")
    assert result.text.strip()
    assert {c.name for c in result.candidates} == {"persona", "neutral"}
    judgement = result.judgement
    assert judgement is not None
    # 2 candidate calls, plus 2 judge calls per attempt when they disagree
    assert result.model_calls == 2 + judgement.model_calls
    assert judgement.model_calls in (0, 2, 4)

    spans = exporter.get_finished_spans()
    chats = [s for s in spans if s.name.startswith("chat ")]
    agents = sorted(s.attributes["gen_ai.agent.name"] for s in chats)
    assert agents.count("persona_candidate") == 1 and agents.count("neutral_candidate") == 1
    assert agents.count("judge") == judgement.model_calls
    judge_stage = next(s for s in spans if s.name == "persona_plugins judge_candidates")
    assert judge_stage.attributes["gen_ai.evaluation.score.label"] == result.chosen
    events = [e for e in judge_stage.events if e.name == "gen_ai.evaluation.result"]
    assert len(events) == len(judgement.verdicts)


async def test_generated_persona_and_spp_on_the_embedded_model(embedded_model):
    generated = await PersonaPipeline(
        embedded_model,
        persona_mode="generated",
        persona="historian",
        model_settings={"max_tokens": 48},
    ).run("Why did the Roman Empire build roads?")
    assert generated.persona is not None
    assert generated.persona_source in ("generated", "fallback")
    assert generated.text.strip()

    spp = await PersonaPipeline(
        embedded_model, persona_mode="multi", model_settings={"max_tokens": 96}
    ).run("Name a fruit that is yellow.")
    candidate = spp.candidates[0]
    assert candidate.name == "spp" and spp.model_calls == 1
    assert "marker_missing" in candidate.metadata and candidate.metadata["transcript"]
    assert spp.text.strip()
