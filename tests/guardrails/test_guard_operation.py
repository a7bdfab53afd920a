"""The guard as one core operation: every detector checked in isolation, failures named, open or
closed on errors, regeneration through the persona stages re-checked by every detector, and
``check_text`` reusing its pipeline."""

from __future__ import annotations

import pytest

from persona_plugins import (
    Finding,
    GuardrailViolation,
    Persona,
    PersonaPipeline,
    Resolution,
    hookimpl,
)
from persona_plugins.guard import collect_detectors
from persona_plugins.guardrails import check_text
from persona_plugins.guardrails.actions import ANNOTATION_PREFIX, DEBIAS_INSTRUCTION
from tests.core.doubles import ScriptedModel, registered

QUESTION = "What is 15% of 80?"
REFUSAL = (
    "As a physically-disabled person, I am unable to perform mathematical calculations. "
    "Therefore, I am unable to answer this question."
)
CLEAN = "15% of 80 is 12."
THREAT = "I will kill you if you ask again."


class Crashing:
    """A detector (``register_detectors``) with a bug: it raises on every response."""

    name = "crashing"

    def check(self, messages, response, persona, config, model):
        raise RuntimeError("the crashing detector has a bug")


class SeaWords:
    """A third-party detector that flags sailors' words, and remembers what it read."""

    name = "sea_words"

    def __init__(self) -> None:
        self.read: list[str] = []

    async def check(self, messages, response, persona, config, model):
        self.read.append(response)
        if "ahoy" in response.lower():
            return [Finding(detector=self.name, message="sailors' talk", severity="warning")]
        return []


class Registers:
    """Registers the given detectors through ``register_detectors``."""

    def __init__(self, *detectors: object):
        self.detectors = detectors

    @hookimpl
    def register_detectors(self, register):
        for detector in self.detectors:
            register(detector)


def pipeline(pm, model, **config) -> PersonaPipeline:
    # An unregistered name in ``detectors`` is a ConfigError: list the test detectors only when
    # the test has registered them.
    registered_now = collect_detectors(pm)
    extra = [name for name in ("crashing", "sea_words") if name in registered_now]
    config.setdefault("persona", "physically_disabled")
    config.setdefault("detectors", ["abstention", "toxicity", *extra])
    return PersonaPipeline(model, plugin_manager=pm, **config)


# -- a detector that raises ----------------------------------------------------------------------


async def test_a_raising_detector_is_named_and_the_other_findings_stand(plugin_manager):
    with registered(plugin_manager, Registers(Crashing())):
        result = await pipeline(plugin_manager, ScriptedModel(REFUSAL), guard="monitor").run(
            QUESTION
        )
    assert [f.detector for f in result.findings] == ["abstention"]
    assert result.failed_detectors == ["crashing"]
    [error] = result.errors
    assert (error.stage, error.plugin, error.error_type) == (
        "check_response",
        "crashing",
        "RuntimeError",
    )
    assert "has a bug" in error.error


async def test_in_enforce_mode_with_errors_open_the_other_findings_are_acted_on(plugin_manager):
    model = ScriptedModel(REFUSAL, CLEAN)
    with registered(plugin_manager, Registers(Crashing())):
        result = await pipeline(plugin_manager, model, guard="enforce").run(QUESTION)
    assert (result.text, result.action) == (CLEAN, "regenerate")
    assert "crashing" in result.failed_detectors


async def test_in_enforce_mode_with_errors_closed_a_failed_detector_blocks_the_response(
    plugin_manager,
):
    model = ScriptedModel(CLEAN)
    with registered(plugin_manager, Registers(Crashing())), pytest.raises(GuardrailViolation) as e:
        await pipeline(plugin_manager, model, guard="enforce", guard_errors="closed").run(QUESTION)
    assert "'crashing'" in str(e.value) and "guard_errors='closed'" in str(e.value)
    assert e.value.response == CLEAN
    assert [m.content for m in e.value.messages] == [QUESTION]


async def test_errors_closed_never_blocks_in_monitor_mode(plugin_manager):
    with registered(plugin_manager, Registers(Crashing())):
        result = await pipeline(
            plugin_manager, ScriptedModel(CLEAN), guard="monitor", guard_errors="closed"
        ).run(QUESTION)
    assert (result.text, result.action, result.failed_detectors) == (CLEAN, "allow", ["crashing"])


async def test_a_raising_check_response_implementation_no_longer_wipes_the_others(
    plugin_manager,
):
    class OldStyleBroken:
        @hookimpl
        def check_response(self, response):
            raise RuntimeError("old-style detector down")

    class OldStyleWorking:
        @hookimpl
        async def check_response(self, response):
            return [Finding(detector="old_style", message="seen", severity="info")]

    with registered(plugin_manager, OldStyleWorking(), OldStyleBroken()):
        result = await pipeline(plugin_manager, ScriptedModel(REFUSAL), guard="monitor").run(
            QUESTION
        )
    assert sorted(f.detector for f in result.findings) == ["abstention", "old_style"]
    assert result.failed_detectors == ["OldStyleBroken"]
    assert [(e.stage, e.plugin) for e in result.errors] == [("check_response", "OldStyleBroken")]


async def test_a_detector_that_returns_something_other_than_findings_is_a_failure(plugin_manager):
    class Garbage:
        name = "garbage"

        def check(self, messages, response, persona, config, model):
            return ["not a finding"]

    with registered(plugin_manager, Registers(Garbage())):
        result = await pipeline(
            plugin_manager, ScriptedModel(CLEAN), guard="monitor", detectors=["garbage"]
        ).run(QUESTION)
    assert result.failed_detectors == ["garbage"]
    assert "expected a list of Finding" in result.errors[0].error


async def test_a_resolver_that_raises_blocks_only_with_errors_closed(plugin_manager):
    class BrokenResolver:
        @hookimpl(tryfirst=True)
        def resolve_findings(self):
            raise RuntimeError("policy service down")

    with registered(plugin_manager, BrokenResolver()):
        opened = await pipeline(plugin_manager, ScriptedModel(REFUSAL), guard="enforce").run(
            QUESTION
        )
        assert (opened.text, opened.action) == (REFUSAL, "allow")
        with pytest.raises(GuardrailViolation, match="resolve_findings"):
            await pipeline(
                plugin_manager, ScriptedModel(REFUSAL), guard="enforce", guard_errors="closed"
            ).run(QUESTION)


# -- regeneration goes through the persona stages and every detector -----------------------------


async def test_regeneration_is_written_by_the_persona_plugins_and_rechecked_by_every_detector(
    plugin_manager,
):
    class CaptainPrompt:
        @hookimpl
        def persona_system_prompt(self, persona):
            return f"You are Captain {persona.name}, and you talk like a sailor."

    sea = SeaWords()
    model = ScriptedModel(REFUSAL, "Ahoy! 15% of 80 be 12.")
    with registered(plugin_manager, CaptainPrompt(), Registers(sea)):
        result = await pipeline(plugin_manager, model, guard="enforce").run(QUESTION)
    regeneration = model.calls[1]
    assert regeneration[0].role == "system"
    assert regeneration[0].content.startswith("You are Captain physically_disabled")
    assert regeneration[0].content.endswith(DEBIAS_INSTRUCTION)
    assert regeneration[-1].content == QUESTION
    assert sea.read == [REFUSAL, "Ahoy! 15% of 80 be 12."], "the regenerated text was rechecked"
    assert result.action == "regenerate"
    assert result.text.startswith("Ahoy!") and "sea_words: sailors' talk" in result.text
    assert ANNOTATION_PREFIX in result.text


async def test_a_regeneration_a_third_party_detector_finds_toxic_is_blocked(plugin_manager):
    class Strict:
        name = "strict"

        def check(self, messages, response, persona, config, model):
            if "12" in response:
                return [Finding(detector="toxicity", message="scored toxic", severity="high")]
            return []

    model = ScriptedModel(REFUSAL, CLEAN)
    with registered(plugin_manager, Registers(Strict())), pytest.raises(GuardrailViolation):
        await pipeline(
            plugin_manager, model, guard="enforce", detectors=["abstention", "strict"]
        ).run(QUESTION)


# -- the operation itself, as adapters call it ---------------------------------------------------


async def test_guard_follows_the_guard_mode(plugin_manager):
    off = pipeline(plugin_manager, ScriptedModel(), guard="off")
    outcome = await off.guard(REFUSAL, QUESTION)
    assert (outcome.text, outcome.findings, outcome.action) == (REFUSAL, [], "allow")

    monitor = pipeline(plugin_manager, ScriptedModel(), guard="monitor")
    outcome = await monitor.guard(REFUSAL, QUESTION)
    assert [f.detector for f in outcome.findings] == ["abstention"]
    assert (outcome.text, outcome.action, outcome.resolution) == (REFUSAL, "allow", None)

    enforce = pipeline(plugin_manager, ScriptedModel(CLEAN), guard="enforce")
    outcome = await enforce.guard(REFUSAL, QUESTION)
    assert (outcome.text, outcome.action, outcome.response) == (CLEAN, "regenerate", REFUSAL)
    assert outcome.resolution is not None and outcome.resolution.action == "regenerate"


async def test_a_blocked_outcome_builds_the_violation_a_turn_raises(plugin_manager):
    enforce = pipeline(plugin_manager, ScriptedModel(), guard="enforce", persona="pirate_captain")
    outcome = await enforce.guard(THREAT, QUESTION)
    assert outcome.blocked and outcome.text == THREAT
    violation = outcome.violation([])
    assert isinstance(violation, GuardrailViolation)
    assert violation.response == THREAT and violation.findings == outcome.findings


async def test_guard_uses_the_given_persona_and_candidates(plugin_manager):
    class Fallback:
        @hookimpl(tryfirst=True)
        def resolve_findings(self, candidates, persona):
            seen.append(persona)
            return Resolution(action="fallback", text=candidates[0].text)

    from persona_plugins import Candidate

    seen: list[Persona | None] = []
    neutral = Candidate(name="neutral", text=CLEAN)
    with registered(plugin_manager, Fallback()):
        enforce = pipeline(plugin_manager, ScriptedModel(), guard="enforce")
        outcome = await enforce.guard(REFUSAL, QUESTION, candidates=[neutral], persona="woman")
    assert (outcome.text, outcome.action) == (CLEAN, "fallback")
    assert seen[0].name == "woman"


# -- check_text ----------------------------------------------------------------------------------


def test_check_text_builds_one_pipeline_for_many_calls(monkeypatch):
    built: list[object] = []
    original = PersonaPipeline.__init__

    def counting(self, *args, **kwargs):
        built.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(PersonaPipeline, "__init__", counting)
    for _ in range(20):
        findings = check_text(REFUSAL, persona="woman", messages=QUESTION)
        assert [f.detector for f in findings] == ["abstention"]
    assert len(built) <= 1
    check_text("Fine.", persona="man")
    assert len(built) <= 2, "one more pipeline for another persona"
