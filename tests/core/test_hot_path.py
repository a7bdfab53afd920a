"""The hot path of a turn: work that does not change between turns is done once per pipeline,
nothing is measured when no meter provider would receive it, messages already in the core's type
are used as they are, and hooks with only plain implementations are called directly (while a
wrapper or hook-call monitoring still sees every call)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.trace import NoOpTracerProvider

import persona_plugins.injection as injection
from persona_plugins import Finding, Message, PersonaChoice, PersonaPipeline, hookimpl
from persona_plugins.config import PipelineConfig
from persona_plugins.hookcalls import Hooks
from persona_plugins.messages import normalize_messages
from persona_plugins.metrics import PipelineMetrics
from persona_plugins.results import PreparedPrompt
from persona_plugins.selection import select_persona
from persona_plugins.stages import TurnContext
from tests.core.doubles import ScriptedModel, by_prompt, registered

QUESTION = "What is 2 + 2?"

#: Every instrument of persona_plugins.metrics, by its attribute name.
INSTRUMENTS = (
    "operation_duration",
    "token_usage",
    "model_calls",
    "stage_duration",
    "judge_decisions",
    "guard_findings",
    "refine_rounds",
    "refine_reviews",
)


class CountingInstrument:
    """Stands in for an OpenTelemetry counter or histogram; remembers every measurement."""

    def __init__(self, name: str, calls: list[tuple[str, float]]):
        self.name = name
        self.calls = calls

    def add(self, value: float, attributes: Mapping[str, Any] | None = None) -> None:
        self.calls.append((self.name, value))

    def record(self, value: float, attributes: Mapping[str, Any] | None = None) -> None:
        self.calls.append((self.name, value))


def counted(monkeypatch: pytest.MonkeyPatch, metrics: PipelineMetrics) -> list[tuple[str, float]]:
    """Replace ``metrics``' instruments with counting doubles; returns the list they fill."""
    calls: list[tuple[str, float]] = []
    for name in INSTRUMENTS:
        monkeypatch.setattr(metrics._instruments, name, CountingInstrument(name, calls))
    return calls


class Flagging:
    @hookimpl
    def check_response(self) -> list[Finding]:
        return [Finding(detector="flag", message="flagged", score=0.5)]


def busy_pipeline(pm: Any, **kwargs: Any) -> PersonaPipeline:
    """A pipeline whose turn measures every kind of thing when measurements are on."""
    model = ScriptedModel(default=by_prompt(persona="Four, matey.", neutral="4"))
    return PersonaPipeline(
        model,
        plugin_manager=pm,
        persona="pirate_captain",
        ensemble="jekyll_hyde",
        judge={"retries": 0},
        guard="monitor",
        detectors=[],
        **kwargs,
    )


# -- metrics ---------------------------------------------------------------------------------------


async def test_nothing_is_measured_when_no_meter_provider_is_set(monkeypatch, plugin_manager):
    pipeline = busy_pipeline(plugin_manager)
    assert not pipeline.metrics.enabled  # the tests never set a global meter provider
    calls = counted(monkeypatch, pipeline.metrics)
    with registered(plugin_manager, Flagging()):
        for _ in range(3):
            result = await pipeline.run(QUESTION)
    assert result.model_calls == 4 and result.findings  # the turn did everything it measures
    assert calls == []


async def test_nothing_is_measured_on_the_no_op_meter_provider(monkeypatch, plugin_manager):
    pipeline = busy_pipeline(plugin_manager, meter_provider=NoOpMeterProvider())
    assert not pipeline.metrics.enabled
    calls = counted(monkeypatch, pipeline.metrics)
    await pipeline.run(QUESTION)
    assert calls == []


async def test_every_measurement_is_made_when_a_meter_provider_is_given(
    monkeypatch, plugin_manager
):
    provider = MeterProvider()
    try:
        pipeline = busy_pipeline(plugin_manager, meter_provider=provider)
        assert pipeline.metrics.enabled
        calls = counted(monkeypatch, pipeline.metrics)
        with registered(plugin_manager, Flagging()):
            await pipeline.run(QUESTION)
    finally:
        provider.shutdown()
    measured = {name for name, _ in calls}
    assert {
        "operation_duration",
        "token_usage",
        "model_calls",
        "stage_duration",
        "judge_decisions",
        "guard_findings",
    } <= measured
    assert sum(1 for name, _ in calls if name == "model_calls") == 4


def test_instruments_are_made_once_per_meter_provider_not_per_pipeline():
    provider = MeterProvider()
    try:
        first, second = PipelineMetrics(provider), PipelineMetrics(provider)
        assert first._instruments is second._instruments
        assert PipelineMetrics()._instruments is PipelineMetrics()._instruments
    finally:
        provider.shutdown()


# -- work done once per pipeline -----------------------------------------------------------------


@pytest.fixture
def renders(monkeypatch) -> list[str]:
    """Every persona rendered with :func:`persona_plugins.injection.render_persona`, by name."""
    rendered: list[str] = []
    real = injection.render_persona

    def counting(persona: Any, template: str = "describe") -> str:
        rendered.append(persona.name)
        return real(persona, template)

    monkeypatch.setattr(injection, "render_persona", counting)
    return rendered


async def test_a_static_personas_prompt_is_rendered_once_per_pipeline(renders, bare_manager):
    model = ScriptedModel()
    pipeline = PersonaPipeline(model, plugin_manager=bare_manager, persona="pirate_captain")
    results = [await pipeline.run(QUESTION) for _ in range(5)]
    assert renders == ["pirate_captain"]
    assert {r.system_prompt for r in results} == {results[0].system_prompt}
    assert all(r.prompt[0] is results[0].prompt[0] for r in results)  # one system message
    assert all(call[0] == Message.system(results[0].system_prompt) for call in model.calls)
    prepared = await pipeline.prepare(QUESTION)
    assert prepared.system_prompt == results[0].system_prompt and len(renders) == 1
    other = PersonaPipeline(ScriptedModel(), plugin_manager=bare_manager, persona="pirate_captain")
    await other.run(QUESTION)
    assert renders == ["pirate_captain", "pirate_captain"]  # once per pipeline


async def test_a_changed_persona_or_template_is_rendered_again(renders, bare_manager):
    pipeline = PersonaPipeline(ScriptedModel(), plugin_manager=bare_manager, persona="chef")
    first = await pipeline.run(QUESTION)
    pipeline.config.persona_template = "roleplay"
    second = await pipeline.run(QUESTION)
    pipeline.config.persona = pipeline.personas["pirate_captain"]
    third = await pipeline.run(QUESTION)
    assert renders == ["chef", "chef", "pirate_captain"]
    assert second.system_prompt.startswith("This conversation is a role-play")
    assert len({first.system_prompt, second.system_prompt, third.system_prompt}) == 3
    assert third.persona.name == "pirate_captain"


async def test_a_plugin_writing_the_system_prompt_is_asked_on_every_turn(renders, bare_manager):
    asked: list[str] = []

    class Numbered:
        @hookimpl
        def persona_system_prompt(self, persona):
            asked.append(persona.name)
            return f"You are {persona.name}, turn {len(asked)}."

    pipeline = PersonaPipeline(ScriptedModel(), plugin_manager=bare_manager, persona="chef")
    with registered(bare_manager, Numbered()):
        texts = [(await pipeline.run(QUESTION)).system_prompt for _ in range(3)]
    assert texts == ["You are chef, turn 1.", "You are chef, turn 2.", "You are chef, turn 3."]
    assert renders == []
    assert (await pipeline.run(QUESTION)).system_prompt.startswith("You are a")  # built-in again
    assert renders == ["chef"]


async def test_a_plugin_registered_after_the_pipeline_is_built_is_called_on_the_next_turn(
    bare_manager, teacher
):
    pipeline = PersonaPipeline(ScriptedModel(), plugin_manager=bare_manager, persona="chef")
    assert (await pipeline.run(QUESTION)).persona.name == "chef"

    class Chooser:
        @hookimpl
        def select_persona(self):
            return PersonaChoice(persona=teacher, source="plugin")

    with registered(bare_manager, Chooser()):
        chosen = await pipeline.run(QUESTION)
    assert (chosen.persona.name, chosen.persona_source) == ("test_teacher", "plugin")
    assert (await pipeline.run(QUESTION)).persona.name == "chef"


# -- messages --------------------------------------------------------------------------------------


async def test_message_objects_passed_in_are_used_as_they_are(monkeypatch, bare_manager):
    history = [Message.user("Hi"), Message.assistant("Ahoy!"), Message.user(QUESTION)]
    model = ScriptedModel()
    pipeline = PersonaPipeline(model, plugin_manager=bare_manager, persona="pirate_captain")

    def no_validation(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a Message was validated again")

    monkeypatch.setattr(Message, "model_validate", no_validation)
    result = await pipeline.run(history)
    assert all(a is b for a, b in zip(result.prompt[1:], history, strict=True))
    assert all(a is b for a, b in zip(model.calls[0][1:], history, strict=True))
    assert result.prompt is not history  # the caller's list is never changed or kept


# -- hooks called directly, and what still sees them -------------------------------------------


async def test_a_wrapper_implementation_sees_every_hook_call_of_every_turn(bare_manager):
    seen: list[str] = []

    class Watching:
        @hookimpl(wrapper=True)
        def select_persona(self):
            seen.append("select_persona")
            return (yield)

        @hookimpl(wrapper=True)
        def persona_system_prompt(self):
            seen.append("persona_system_prompt")
            return (yield)

    pipeline = PersonaPipeline(ScriptedModel(), plugin_manager=bare_manager, persona="chef")
    with registered(bare_manager, Watching()):
        for _ in range(2):
            result = await pipeline.run(QUESTION)
    assert seen == ["select_persona", "persona_system_prompt"] * 2
    assert result.persona.name == "chef" and result.system_prompt.startswith("You are a")


async def test_hook_call_monitoring_sees_every_hook_call(bare_manager):
    called: list[str] = []
    pipeline = PersonaPipeline(ScriptedModel(), plugin_manager=bare_manager, persona="chef")
    await pipeline.run(QUESTION)
    undo = bare_manager.add_hookcall_monitoring(
        lambda name, impls, kwargs: called.append(name), lambda *args: None
    )
    try:
        await pipeline.run(QUESTION)
    finally:
        undo()
    assert called == [
        "select_persona",
        "persona_system_prompt",
        "inject_persona",
        "generate_candidates",
        "on_turn_complete",
    ]
    called.clear()
    await pipeline.run(QUESTION)
    assert called == []


@pytest.mark.parametrize("mode", ["static", "none", "multi"])
async def test_the_built_in_choice_is_the_hooks_own_answer(mode, bare_manager):
    pipeline = PersonaPipeline(
        ScriptedModel(), plugin_manager=bare_manager, persona="chef", persona_mode=mode
    )
    expected = select_persona([], pipeline.config, None)
    for _ in range(2):
        result = await pipeline.run(QUESTION)
        assert (result.persona, result.persona_source, result.persona_note) == (
            expected.persona,
            expected.source,
            expected.note,
        )


async def test_a_stage_that_raises_is_recorded_with_tracing_and_metrics_off(bare_manager):
    class Broken:
        @hookimpl
        def inject_persona(self, messages: Sequence[Message]) -> list[Message]:
            raise RuntimeError("injector down")

    # Explicit no-op providers: an earlier test in the session may have set a global one.
    pipeline = PersonaPipeline(
        ScriptedModel(),
        plugin_manager=bare_manager,
        persona="chef",
        tracer_provider=NoOpTracerProvider(),
        meter_provider=NoOpMeterProvider(),
    )
    assert not pipeline.telemetry.may_record() and not pipeline.metrics.enabled
    with registered(bare_manager, Broken()):
        result = await pipeline.run(QUESTION)
    assert [(e.stage, e.error_type, e.error) for e in result.errors] == [
        ("inject_persona", "RuntimeError", "injector down")
    ]
    assert result.text == "4" and result.system_prompt is None


# -- prepare(): the stages skipped only when nothing but the built-ins could take part -------------


def quiet_pipeline(pm: Any, model: Any = None, **config: Any) -> PersonaPipeline:
    """A pipeline nothing records (explicit no-op providers: an earlier test in the session may
    have set global ones)."""
    pipeline = PersonaPipeline(
        model or ScriptedModel(),
        plugin_manager=pm,
        tracer_provider=NoOpTracerProvider(),
        meter_provider=NoOpMeterProvider(),
        **config,
    )
    assert not pipeline.telemetry.may_record() and not pipeline.metrics.enabled
    return pipeline


@pytest.fixture
def stage_runs(monkeypatch) -> list[str]:
    """The name of every stage run through the stage machinery (``TurnContext.stage``)."""
    ran: list[str] = []
    real = TurnContext.stage

    async def counting(self: TurnContext, name: str, body: Any) -> Any:
        ran.append(name)
        return await real(self, name, body)

    monkeypatch.setattr(TurnContext, "stage", counting)
    return ran


async def staged_prepare(pipeline: PersonaPipeline, messages: Any) -> PreparedPrompt:
    """What ``prepare`` gives through the stages (the path every other configuration takes)."""
    turn = TurnContext.start(pipeline, normalize_messages(messages))
    return await injection.prepare_prompt(turn, pipeline.personas)


STAGES_OF_PREPARE = ("select_persona", "inject_persona", "prepare")  # in the order they end
SYSTEM_LED = [Message.system("Answer in French."), Message.user(QUESTION)]


@pytest.mark.parametrize(
    ("config", "merges"),
    [
        ({"persona": "chef"}, None),
        ({"persona": "chef", "persona_template": "adopt"}, None),
        ({"persona": "chef"}, False),  # a model taking one system message: merged
        ({"persona": "chef", "merge_system_messages": True}, None),
        ({"persona": "chef", "merge_system_messages": False}, False),
        ({"persona": "chef", "persona_mode": "none"}, None),
        ({"persona": "chef", "persona_mode": "multi"}, None),
        ({"persona": None}, None),
    ],
)
@pytest.mark.parametrize("messages", [QUESTION, SYSTEM_LED], ids=["question", "system_led"])
async def test_prepare_with_only_the_built_ins_gives_what_the_stages_give_without_them(
    config, merges, messages, bare_manager, stage_runs
):
    model = ScriptedModel(supports_multiple_system_messages=merges)
    pipeline = quiet_pipeline(bare_manager, model, **config)
    staged = await staged_prepare(pipeline, messages)
    stage_runs.clear()
    for _ in range(2):
        prepared = await pipeline.prepare(messages)
        assert prepared.model_dump() == staged.model_dump()
    assert stage_runs == []  # no stage machinery
    if not isinstance(messages, str):  # unchanged messages are the very objects passed in
        assert prepared.prompt[-1] is messages[-1]
    assert model.calls == []


@pytest.mark.parametrize("hook", ["select_persona", "persona_system_prompt", "inject_persona"])
async def test_a_persona_hook_registered_after_the_pipeline_was_built_is_called_by_prepare(
    hook, bare_manager, teacher, stage_runs
):
    pipeline = quiet_pipeline(bare_manager, persona="chef")
    await pipeline.prepare(QUESTION)
    called: list[str] = []

    class Chooser:
        @hookimpl
        def select_persona(self):
            called.append(hook)
            return PersonaChoice(persona=teacher, source="plugin")

    class Writer:
        @hookimpl
        def persona_system_prompt(self):
            called.append(hook)
            return "You are a plugin's persona."

    class Placer:
        @hookimpl
        def inject_persona(self, messages, system_prompt):
            called.append(hook)
            return [Message.system(f"[{system_prompt}]"), *messages]

    Own = {"select_persona": Chooser, "persona_system_prompt": Writer, "inject_persona": Placer}[
        hook
    ]
    with registered(bare_manager, Own()):
        prepared = [await pipeline.prepare(QUESTION) for _ in range(2)]
    assert called == [hook, hook]
    assert stage_runs == ["select_persona", "inject_persona"] * 2
    last = prepared[-1]
    if hook == "select_persona":
        assert (last.persona.name, last.persona_source) == ("test_teacher", "plugin")
    elif hook == "persona_system_prompt":
        assert last.system_prompt == last.prompt[0].content == "You are a plugin's persona."
    else:
        assert last.prompt[0].content == f"[{last.system_prompt}]"
    stage_runs.clear()
    back = await pipeline.prepare(QUESTION)  # unregistered: the built-ins alone again
    assert back.persona.name == "chef" and back.prompt[0].content == back.system_prompt
    assert stage_runs == []


async def test_a_wrapper_implementation_sees_every_prepare(bare_manager):
    seen: list[str] = []

    class Watching:
        @hookimpl(wrapper=True)
        def inject_persona(self):
            seen.append("inject_persona")
            return (yield)

    pipeline = quiet_pipeline(bare_manager, persona="chef")
    await pipeline.prepare(QUESTION)
    with registered(bare_manager, Watching()):
        prepared = [await pipeline.prepare(QUESTION) for _ in range(2)]
    assert seen == ["inject_persona", "inject_persona"]
    assert prepared[-1].prompt[0].content == prepared[-1].system_prompt


async def test_hook_call_monitoring_sees_every_persona_hook_of_prepare(bare_manager):
    called: list[str] = []
    pipeline = quiet_pipeline(bare_manager, persona="chef")
    await pipeline.prepare(QUESTION)
    undo = bare_manager.add_hookcall_monitoring(
        lambda name, impls, kwargs: called.append(name), lambda *args: None
    )
    try:
        await pipeline.prepare(QUESTION)
    finally:
        undo()
    assert called == ["select_persona", "persona_system_prompt", "inject_persona"]


async def test_a_recording_tracer_gets_the_stage_spans_of_prepare(bare_manager, memory_tracing):
    provider, exporter = memory_tracing
    pipeline = PersonaPipeline(
        ScriptedModel(), plugin_manager=bare_manager, persona="chef", tracer_provider=provider
    )
    for _ in range(2):
        await pipeline.prepare(QUESTION)
    names = [span.name for span in exporter.get_finished_spans()]
    assert names == [f"persona_plugins {s}" for s in STAGES_OF_PREPARE] * 2
    assert exporter.get_finished_spans()[-1].attributes["persona_plugins.persona.name"] == "chef"


async def test_a_meter_provider_gets_the_stage_durations_of_prepare(monkeypatch, bare_manager):
    pipeline = PersonaPipeline(
        ScriptedModel(), plugin_manager=bare_manager, persona="chef", meter_provider=MeterProvider()
    )
    calls = counted(monkeypatch, pipeline.metrics)
    await pipeline.prepare(QUESTION)
    assert [name for name, _ in calls] == ["stage_duration"] * 2  # select and inject


async def test_a_generated_persona_is_written_on_every_prepare(bare_manager):
    model = ScriptedModel(default="a seasoned arithmetic tutor")
    pipeline = quiet_pipeline(bare_manager, model, persona_mode="generated")
    prepared = [await pipeline.prepare(QUESTION) for _ in range(2)]
    assert len(model.calls) == 2
    assert [p.persona_source for p in prepared] == ["generated", "generated"]
    assert prepared[-1].system_prompt.startswith("You are a seasoned arithmetic tutor")


async def test_a_built_in_that_raises_in_prepare_is_handled_as_the_stage_handles_it(
    monkeypatch, bare_manager, stage_runs
):
    pipeline = quiet_pipeline(bare_manager, persona="chef")

    def broken(persona: Any, template: str = "describe") -> str:
        raise RuntimeError("renderer down")

    monkeypatch.setattr(injection, "render_persona", broken)
    prepared = await pipeline.prepare(SYSTEM_LED)
    assert stage_runs == ["select_persona", "inject_persona"]  # the stages ran and recovered
    assert prepared.system_prompt is None and prepared.prompt == SYSTEM_LED
    assert prepared.persona.name == "chef"


def test_can_stream_follows_candidate_plugins_and_the_config_after_it_was_read(bare_manager):
    class Extra:
        @hookimpl
        def generate_candidates(self):
            return None

    pipeline = PersonaPipeline(ScriptedModel(), plugin_manager=bare_manager, persona="chef")
    assert pipeline.can_stream and pipeline.can_stream
    with registered(bare_manager, Extra()):
        assert not pipeline.can_stream  # a plugin of one's own producing candidates
    assert pipeline.can_stream
    pipeline.config.guard = "monitor"
    assert not pipeline.can_stream


def test_work_derived_from_a_hooks_implementations_is_redone_only_when_they_change(bare_manager):
    class Extra:
        @hookimpl
        def generate_candidates(self):
            return None

    hooks = Hooks(bare_manager)
    made: list[int] = []

    def count() -> int:
        made.append(1)
        return len(bare_manager.hook.generate_candidates.get_hookimpls())

    built_ins = hooks.derived("generate_candidates", count)
    assert hooks.derived("generate_candidates", count) == built_ins
    assert len(made) == 1  # asked twice, made once
    with registered(bare_manager, Extra()):
        assert hooks.derived("generate_candidates", count) == built_ins + 1
        assert hooks.derived("generate_candidates", count) == built_ins + 1
        assert len(made) == 2
    assert hooks.derived("generate_candidates", count) == built_ins
    assert len(made) == 3
    with registered(bare_manager, Extra()), registered(bare_manager, Extra()):
        assert hooks.derived("generate_candidates", count) == built_ins + 2


def test_implementation_lists_follow_plugins_registered_and_unregistered(bare_manager):
    class Writer:
        @hookimpl
        def persona_system_prompt(self):
            return "written"

    hooks = Hooks(bare_manager)
    names = ("select_persona", "persona_system_prompt")
    first = hooks.implementation_lists(names)
    assert first is not None and hooks.implementation_lists(names) == first
    writer = Writer()
    with registered(bare_manager, writer):
        during = hooks.implementation_lists(names)
        assert during is not None and during != first
        assert [impl.plugin for impl in during[1]].count(writer) == 1
        assert during[0] == first[0]
    assert hooks.implementation_lists(names) == first


async def test_hooks_notice_a_plugin_swapped_for_another_with_as_many_implementations(
    bare_manager, teacher
):
    class Writer:
        def __init__(self, text: str):
            self.text = text

        @hookimpl
        def persona_system_prompt(self):
            return self.text

    hooks = Hooks(bare_manager)
    config = PipelineConfig()
    ask = {"persona": teacher, "config": config}
    built_in = await hooks.decide("persona_system_prompt", **ask)
    first, second = Writer("first"), Writer("second")
    with registered(bare_manager, first):
        assert await hooks.decide("persona_system_prompt", **ask) == "first"
        assert not hooks.is_only("persona_system_prompt", injection.persona_system_prompt)
    # as many implementations as a moment ago, but another plugin's: resolved again
    with registered(bare_manager, second):
        assert await hooks.decide("persona_system_prompt", **ask) == "second"
    assert await hooks.decide("persona_system_prompt", **ask) == built_in
    assert hooks.is_only("persona_system_prompt", injection.persona_system_prompt)


async def test_prepare_follows_a_template_persona_or_mode_changed_after_it_ran(
    renders, bare_manager
):
    pipeline = quiet_pipeline(bare_manager, persona="chef")
    first = await pipeline.prepare(QUESTION)
    again = await pipeline.prepare(QUESTION)
    pipeline.config.persona_template = "roleplay"
    second = await pipeline.prepare(QUESTION)
    pipeline.config.persona = pipeline.personas["pirate_captain"]
    third = await pipeline.prepare(QUESTION)
    pipeline.config.persona_mode = "none"
    fourth = await pipeline.prepare(QUESTION)
    assert renders == ["chef", "chef", "pirate_captain"]
    assert again.prompt[0] is first.prompt[0]  # one system message while nothing changed
    assert second.system_prompt.startswith("This conversation is a role-play")
    assert (third.persona.name, third.prompt[0].content) == ("pirate_captain", third.system_prompt)
    assert fourth.persona is None and fourth.system_prompt is None
    assert fourth.prompt == [Message.user(QUESTION)]
