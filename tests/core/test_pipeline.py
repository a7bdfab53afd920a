"""PersonaPipeline: the stages of a turn, model calls, faults, messages, guard and refine stages."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from persona_plugins import (
    Candidate,
    Completion,
    Finding,
    GuardrailViolation,
    Judgement,
    Message,
    MessageError,
    ModelCallError,
    Persona,
    PersonaChoice,
    PersonaPipeline,
    PipelineConfig,
    RefinementPlan,
    Resolution,
    TurnResult,
    Usage,
    hookimpl,
)
from persona_plugins.pipeline import normalize_messages
from tests.core.doubles import (
    CALL_USAGE,
    Raw,
    ScriptedModel,
    ScriptedRefiner,
    by_prompt,
    has_persona,
    registered,
    stall,
)

QUESTION = "What is 2 + 2?"
FINDING = Finding(detector="test_detector", message="found something", severity="high", score=0.9)


class Recorder:
    """Implements every hook, records each call in order, and changes nothing by default."""

    def __init__(self, *, findings: list[Finding] | None = None, refiners=(), plan=None):
        self.calls: list[str] = []
        self.findings = findings
        self.refiners = list(refiners)
        self.plan = plan
        self.results: list[TurnResult] = []
        self.errors_seen: list[list[str]] = []

    @hookimpl
    def configure(self, config):
        self.calls.append("configure")

    @hookimpl
    def register_personas(self, register):
        self.calls.append("register_personas")

    @hookimpl
    def register_refiners(self, register):
        self.calls.append("register_refiners")
        for refiner in self.refiners:
            register(refiner)

    @hookimpl
    def select_persona(self, messages, config, model, personas):
        self.calls.append("select_persona")

    @hookimpl
    def persona_system_prompt(self, persona, config):
        self.calls.append("persona_system_prompt")

    @hookimpl
    def inject_persona(self, messages, system_prompt, config, model):
        self.calls.append("inject_persona")

    @hookimpl
    def generate_candidates(self, messages, prompt, persona, config, model, settings):
        self.calls.append("generate_candidates")

    @hookimpl
    def judge_candidates(self, messages, candidates, persona, config, model):
        self.calls.append("judge_candidates")

    @hookimpl
    def plan_refinement(self, messages, draft, refiners, persona, config, model):
        self.calls.append("plan_refinement")
        return self.plan

    @hookimpl
    def merge_reviews(self, messages, draft, reviews, persona, config, model):
        self.calls.append("merge_reviews")

    @hookimpl
    def check_response(self, messages, response, persona, config, model):
        self.calls.append("check_response")
        return self.findings

    @hookimpl
    def resolve_findings(self, messages, response, findings, candidates, persona, config, model):
        self.calls.append("resolve_findings")

    @hookimpl
    def on_turn_complete(self, result, config):
        self.calls.append("on_turn_complete")
        self.results.append(result)
        self.errors_seen.append([e.stage for e in result.errors])


def turn_calls(recorder: Recorder) -> list[str]:
    """The hooks called during turns (set-up hooks left out)."""
    setup = {"configure", "register_personas", "register_refiners"}
    return [name for name in recorder.calls if name not in setup]


#: The hooks the pipeline calls while creating a pipeline and running a turn (DESIGN.md).
PIPELINE_HOOKS = {
    "configure",
    "register_personas",
    "register_refiners",
    "select_persona",
    "persona_system_prompt",
    "inject_persona",
    "generate_candidates",
    "judge_candidates",
    "plan_refinement",
    "merge_reviews",
    "check_response",
    "resolve_findings",
    "on_turn_complete",
}


def test_the_recorder_implements_every_stage_hook(plugin_manager):
    hooks = {name for name in vars(plugin_manager.hook) if not name.startswith("_")}
    implemented = {name for name in vars(Recorder) if not name.startswith("_")}
    assert hooks >= PIPELINE_HOOKS
    assert implemented >= PIPELINE_HOOKS


# -- stage order ---------------------------------------------------------------------------------


def test_set_up_hooks_run_when_the_pipeline_is_created(bare_manager):
    recorder = Recorder()
    with registered(bare_manager, recorder):
        PersonaPipeline(ScriptedModel(), plugin_manager=bare_manager)
    assert recorder.calls == ["register_personas", "register_refiners", "configure"]


async def test_a_plain_persona_turn_runs_the_stages_in_order(bare_manager):
    recorder = Recorder()
    with registered(bare_manager, recorder):
        pipeline = PersonaPipeline(
            ScriptedModel(), plugin_manager=bare_manager, persona="math_teacher"
        )
        await pipeline.run(QUESTION)
    assert turn_calls(recorder) == [
        "select_persona",
        "persona_system_prompt",
        "inject_persona",
        "generate_candidates",
        "on_turn_complete",
    ]


async def test_with_no_persona_nothing_is_injected(bare_manager):
    recorder = Recorder()
    with registered(bare_manager, recorder):
        await PersonaPipeline(ScriptedModel(), plugin_manager=bare_manager).run(QUESTION)
    assert turn_calls(recorder) == ["select_persona", "generate_candidates", "on_turn_complete"]


async def test_every_stage_runs_in_order_when_everything_is_switched_on(bare_manager):
    recorder = Recorder(
        findings=[FINDING],
        refiners=[ScriptedRefiner("shout", lambda d: d.upper())],
        plan=RefinementPlan(refiners=["shout"]),
    )
    with registered(bare_manager, recorder):
        pipeline = PersonaPipeline(
            ScriptedModel(default=by_prompt(persona="Four, matey.", neutral="4")),
            plugin_manager=bare_manager,
            persona="pirate_captain",
            ensemble="jekyll_hyde",
            refine="sequential",
            refiners=["shout"],
            guard="enforce",
        )
        result = await pipeline.run(QUESTION)
    assert turn_calls(recorder) == [
        "select_persona",
        "persona_system_prompt",
        "inject_persona",
        "generate_candidates",
        "judge_candidates",
        "plan_refinement",
        "check_response",
        "resolve_findings",
        "on_turn_complete",
    ]
    assert result.text == "FOUR, MATEY."


async def test_the_judge_is_asked_only_when_more_than_one_candidate_is_usable(bare_manager):
    recorder = Recorder()
    model = ScriptedModel(default=by_prompt(persona="Four.", neutral=RuntimeError("down")))
    with registered(bare_manager, recorder):
        pipeline = PersonaPipeline(
            model, plugin_manager=bare_manager, persona="math_teacher", ensemble="jekyll_hyde"
        )
        result = await pipeline.run(QUESTION)
    assert len(result.candidates) == 2
    assert "judge_candidates" not in recorder.calls


@pytest.mark.parametrize(
    ("refine", "with_refiner", "planned"),
    [("sequential", True, True), ("sequential", False, False), ("off", True, False)],
)
async def test_refinement_is_planned_only_when_switched_on_and_refiners_exist(
    bare_manager, refine, with_refiner, planned
):
    refiners = [ScriptedRefiner("noop", lambda d: None)] if with_refiner else []
    recorder = Recorder(refiners=refiners)
    with registered(bare_manager, recorder):
        pipeline = PersonaPipeline(ScriptedModel(), plugin_manager=bare_manager, refine=refine)
        await pipeline.run(QUESTION)
    assert ("plan_refinement" in recorder.calls) is planned


@pytest.mark.parametrize(
    ("guard", "findings", "checked", "resolved"),
    [
        ("off", [FINDING], False, False),
        ("monitor", [FINDING], True, False),
        ("enforce", [], True, False),
        ("enforce", [FINDING], True, True),
    ],
)
async def test_guard_stages_run_according_to_the_guard_mode_and_findings(
    bare_manager, guard, findings, checked, resolved
):
    recorder = Recorder(findings=findings)
    with registered(bare_manager, recorder):
        await PersonaPipeline(ScriptedModel(), plugin_manager=bare_manager, guard=guard).run(
            QUESTION
        )
    assert ("check_response" in recorder.calls) is checked
    assert ("resolve_findings" in recorder.calls) is resolved
    assert recorder.calls[-1] == "on_turn_complete"


async def test_observers_receive_the_result_the_caller_gets(bare_manager):
    recorder = Recorder()
    with registered(bare_manager, recorder):
        result = await PersonaPipeline(ScriptedModel(), plugin_manager=bare_manager).run(QUESTION)
    assert recorder.results == [result]


async def test_observers_see_the_errors_of_the_turn(bare_manager):
    class Broken:
        @hookimpl
        def check_response(self, response):
            raise RuntimeError("detector crashed")

    recorder = Recorder()
    with registered(bare_manager, Broken(), recorder):
        await PersonaPipeline(ScriptedModel(), plugin_manager=bare_manager, guard="monitor").run(
            QUESTION
        )
    assert recorder.errors_seen == [["check_response"]]


def test_a_plugin_registered_later_is_configured_when_the_next_pipeline_is_built(bare_manager):
    pipeline = PersonaPipeline(ScriptedModel(), plugin_manager=bare_manager, guard="monitor")
    seen: list[PipelineConfig] = []

    class Late:
        @hookimpl
        def configure(self, config):
            seen.append(config)

    with registered(bare_manager, Late()):
        assert seen == [], "registering replays nothing: the manager keeps no history"
        PersonaPipeline(ScriptedModel(), plugin_manager=bare_manager, guard="monitor")
        PersonaPipeline(ScriptedModel(), plugin_manager=bare_manager, guard="monitor")
    assert seen == [pipeline.config], "once per plugin manager and configuration"


# -- model calls ---------------------------------------------------------------------------------


async def test_a_persona_turn_makes_one_model_call_with_the_persona(bare_manager):
    model = ScriptedModel("Four.")
    pipeline = PersonaPipeline(model, plugin_manager=bare_manager, persona="math_teacher")
    result = await pipeline.run(QUESTION)
    assert result.text == "Four."
    assert result.model_calls == 1
    assert len(model.calls) == 1
    assert has_persona(model.calls[0])
    assert model.calls[0][-1] == Message.user(QUESTION)
    assert [c.name for c in result.candidates] == ["persona"]
    assert result.chosen == "persona"
    assert result.persona.name == "math_teacher"
    assert result.persona_source == "config"


async def test_a_turn_without_a_persona_answers_the_conversation_unchanged(bare_manager):
    model = ScriptedModel("4")
    result = await PersonaPipeline(model, plugin_manager=bare_manager).run(QUESTION)
    assert model.calls == [[Message.user(QUESTION)]]
    assert result.persona is None
    assert result.system_prompt is None
    assert [c.name for c in result.candidates] == ["neutral"]


async def test_persona_mode_none_ignores_the_configured_persona(bare_manager):
    model = ScriptedModel()
    pipeline = PersonaPipeline(
        model, plugin_manager=bare_manager, persona="math_teacher", persona_mode="none"
    )
    result = await pipeline.run(QUESTION)
    assert result.persona is None
    assert not has_persona(model.calls[0])


async def test_jekyll_hyde_makes_two_calls_one_with_and_one_without_the_persona(bare_manager):
    model = ScriptedModel(default=by_prompt(persona="Four, says the teacher.", neutral="4"))
    pipeline = PersonaPipeline(
        model, plugin_manager=bare_manager, persona="math_teacher", ensemble="jekyll_hyde"
    )
    result = await pipeline.run(QUESTION)
    assert result.model_calls == 2
    assert sorted(has_persona(call) for call in model.calls) == [False, True]
    assert {c.name: c.text for c in result.candidates} == {
        "persona": "Four, says the teacher.",
        "neutral": "4",
    }


async def test_with_no_judge_the_first_usable_candidate_is_kept(bare_manager):
    model = ScriptedModel(default=by_prompt(persona="Four, says the teacher.", neutral="4"))
    pipeline = PersonaPipeline(
        model, plugin_manager=bare_manager, persona="math_teacher", ensemble="jekyll_hyde"
    )
    result = await pipeline.run(QUESTION)
    assert result.judgement is None
    assert result.chosen == result.candidates[0].name
    assert result.text == result.candidates[0].text


async def test_a_judge_plugin_decides_which_candidate_is_returned(bare_manager):
    class PickNeutral:
        @hookimpl
        def judge_candidates(self, candidates):
            return Judgement(chosen="neutral", consistent=True, reason="plainer")

    model = ScriptedModel(default=by_prompt(persona="Four, matey.", neutral="4"))
    with registered(bare_manager, PickNeutral()):
        pipeline = PersonaPipeline(
            model, plugin_manager=bare_manager, persona="pirate_captain", ensemble="jekyll_hyde"
        )
        result = await pipeline.run(QUESTION)
    assert result.text == "4"
    assert result.chosen == "neutral"
    assert result.judgement.reason == "plainer"


async def test_a_judge_naming_an_unknown_candidate_is_recorded_and_the_first_kept(bare_manager):
    class Confused:
        @hookimpl
        def judge_candidates(self):
            return Judgement(chosen="third")

    model = ScriptedModel(default=by_prompt(persona="Four, matey.", neutral="4"))
    with registered(bare_manager, Confused()):
        pipeline = PersonaPipeline(
            model, plugin_manager=bare_manager, persona="pirate_captain", ensemble="jekyll_hyde"
        )
        result = await pipeline.run(QUESTION)
    assert result.chosen == result.candidates[0].name
    assert [e.error_type for e in result.errors] == ["UnknownCandidate"]
    assert "'third'" in result.errors[0].error


async def test_usage_and_calls_add_up_over_every_model_call_including_plugins(bare_manager):
    class ModelJudge:
        @hookimpl
        async def judge_candidates(self, candidates, model):
            await model.complete([Message.user("Which is better?")])
            return Judgement(chosen=candidates[0].name, model_calls=1)

    model = ScriptedModel(default=by_prompt(persona="Four, matey.", neutral="4"))
    with registered(bare_manager, ModelJudge()):
        pipeline = PersonaPipeline(
            model, plugin_manager=bare_manager, persona="pirate_captain", ensemble="jekyll_hyde"
        )
        result = await pipeline.run(QUESTION)
    assert result.model_calls == len(model.calls) == 3
    assert result.usage == Usage(
        input_tokens=3 * CALL_USAGE.input_tokens, output_tokens=3 * CALL_USAGE.output_tokens
    )
    assert sum((c.usage for c in result.candidates), Usage()) == Usage(
        input_tokens=2 * CALL_USAGE.input_tokens, output_tokens=2 * CALL_USAGE.output_tokens
    )


async def test_each_turn_counts_its_own_calls(bare_manager):
    pipeline = PersonaPipeline(ScriptedModel(), plugin_manager=bare_manager)
    first = await pipeline.run(QUESTION)
    second = await pipeline.run(QUESTION)
    assert first.model_calls == second.model_calls == 1
    assert second.usage == CALL_USAGE


async def test_generation_settings_reach_the_model_and_turn_settings_win(bare_manager):
    model = ScriptedModel()
    pipeline = PersonaPipeline(
        model,
        plugin_manager=bare_manager,
        model_settings={"temperature": 0.1, "max_tokens": 64},
    )
    await pipeline.run(QUESTION, max_tokens=8)
    assert model.settings == [{"temperature": 0.1, "max_tokens": 8}]


async def test_a_turn_may_use_another_model_than_the_pipelines(bare_manager):
    default, other = ScriptedModel("default"), ScriptedModel("other")
    pipeline = PersonaPipeline(default, plugin_manager=bare_manager)
    result = await pipeline.run(QUESTION, model=other)
    assert result.text == "other"
    assert (len(default.calls), len(other.calls)) == (0, 1)


def test_run_sync_runs_a_turn_from_synchronous_code(bare_manager):
    result = PersonaPipeline(ScriptedModel("4"), plugin_manager=bare_manager).run_sync(QUESTION)
    assert result.text == "4"


async def test_a_plugin_may_choose_the_persona(bare_manager, teacher):
    class Chooser:
        @hookimpl
        def select_persona(self, personas):
            return PersonaChoice(persona=teacher, source="chooser", note="because")

    model = ScriptedModel()
    with registered(bare_manager, Chooser()):
        pipeline = PersonaPipeline(model, plugin_manager=bare_manager, persona="math_teacher")
        result = await pipeline.run(QUESTION)
    assert result.persona == teacher
    assert (result.persona_source, result.persona_note) == ("chooser", "because")
    assert teacher.description in model.calls[0][0].content


async def test_a_plugin_may_choose_the_persona_asynchronously(bare_manager, teacher):
    class AsyncChooser:
        @hookimpl
        def select_persona(self, model):
            async def choose() -> PersonaChoice:
                await model.complete([Message.user("Who should answer?")])
                return PersonaChoice(persona=teacher, source="generated")

            return choose()

    model = ScriptedModel()
    with registered(bare_manager, AsyncChooser()):
        result = await PersonaPipeline(model, plugin_manager=bare_manager).run(QUESTION)
    assert result.persona == teacher
    assert result.model_calls == 2


async def test_plugins_may_add_candidates_of_their_own(bare_manager):
    class Extra:
        @hookimpl
        def generate_candidates(self, messages, model, settings):
            async def answer() -> Candidate:
                completion = await model.complete(messages, **settings)
                return Candidate(name="extra", text=completion.text.upper(), model_calls=1)

            return [answer(), None]

    with registered(bare_manager, Extra()):
        result = await PersonaPipeline(
            ScriptedModel(default="four"), plugin_manager=bare_manager
        ).run(QUESTION)
    assert sorted(c.name for c in result.candidates) == ["extra", "neutral"]
    assert result.model_calls == 2


async def test_with_no_candidate_plugin_the_prompt_is_answered_directly(bare_manager):
    bare_manager.unregister(name="persona_plugins.candidates")
    model = ScriptedModel("direct answer")
    pipeline = PersonaPipeline(model, plugin_manager=bare_manager, persona="math_teacher")
    result = await pipeline.run(QUESTION)
    assert result.text == "direct answer"
    assert [c.name for c in result.candidates] == ["direct"]
    assert has_persona(model.calls[0])


# -- faults --------------------------------------------------------------------------------------


class Boom(RuntimeError):
    pass


def raising_plugin(hook: str):
    """A plugin whose implementation of ``hook`` raises."""

    def impl(self):
        raise Boom(f"{hook} exploded")

    impl.__name__ = hook
    return type(f"Raising_{hook}", (), {hook: hookimpl(impl)})()


#: hook -> (the stage recorded in TurnResult.errors, the config that makes the stage run)
STAGES: dict[str, tuple[str, dict[str, Any]]] = {
    "select_persona": ("select_persona", {}),
    "persona_system_prompt": ("inject_persona", {}),
    "inject_persona": ("inject_persona", {}),
    "generate_candidates": ("generate_candidates", {}),
    "judge_candidates": ("judge_candidates", {"ensemble": "jekyll_hyde"}),
    "plan_refinement": ("refine", {"refine": "sequential", "refiners": ["noop"]}),
    "check_response": ("check_response", {"guard": "monitor"}),
    "resolve_findings": ("resolve_findings", {"guard": "enforce"}),
    "on_turn_complete": ("on_turn_complete", {}),
}


@pytest.mark.parametrize("hook", sorted(STAGES))
async def test_a_plugin_raising_in_any_stage_is_recorded_and_the_turn_still_answers(
    bare_manager, hook
):
    stage, config = STAGES[hook]
    helpers = Recorder(findings=[FINDING], refiners=[ScriptedRefiner("noop", lambda d: None)])
    model = ScriptedModel(default=by_prompt(persona="Four, says the teacher.", neutral="4"))
    with registered(bare_manager, helpers, raising_plugin(hook)):
        pipeline = PersonaPipeline(
            model, plugin_manager=bare_manager, persona="math_teacher", **config
        )
        result = await pipeline.run(QUESTION)
    assert result.text in {"Four, says the teacher.", "4"}
    assert [(e.stage, e.error_type) for e in result.errors] == [(stage, "Boom")]
    assert result.errors[0].error == f"{hook} exploded"


async def test_a_failed_persona_selection_falls_back_to_the_configured_persona(bare_manager):
    with registered(bare_manager, raising_plugin("select_persona")):
        pipeline = PersonaPipeline(
            ScriptedModel(), plugin_manager=bare_manager, persona="physician"
        )
        result = await pipeline.run(QUESTION)
    assert result.persona.name == "physician"
    assert "no plugin chose a persona" in result.persona_note


async def test_a_failed_candidate_stage_still_answers_directly(bare_manager):
    model = ScriptedModel("direct")
    with registered(bare_manager, raising_plugin("generate_candidates")):
        result = await PersonaPipeline(model, plugin_manager=bare_manager).run(QUESTION)
    assert result.text == "direct"
    assert result.model_calls == 1


async def test_a_model_that_always_raises_gives_model_call_error_keeping_the_conversation(
    bare_manager,
):
    cause = ConnectionError("the model server is down")
    model = ScriptedModel(default=cause)
    conversation = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "My long question, typed with care."},
    ]
    pipeline = PersonaPipeline(model, plugin_manager=bare_manager, persona="math_teacher")
    with pytest.raises(ModelCallError) as info:
        await pipeline.run(conversation)
    error = info.value
    assert error.messages == [Message(**m) for m in conversation]
    assert error.__cause__ is cause
    assert "the model server is down" in str(error)
    assert error.errors == ["ConnectionError: the model server is down"]


async def test_when_every_candidate_fails_the_cause_is_a_model_exception(bare_manager):
    model = ScriptedModel(default=by_prompt(persona=Boom("persona"), neutral=Boom("neutral")))
    pipeline = PersonaPipeline(
        model, plugin_manager=bare_manager, persona="math_teacher", ensemble="jekyll_hyde"
    )
    with pytest.raises(ModelCallError) as info:
        await pipeline.run(QUESTION)
    assert isinstance(info.value.__cause__, Boom)
    assert len(info.value.errors) == 2
    assert info.value.messages == [Message.user(QUESTION)]


async def test_with_jekyll_hyde_the_persona_answer_survives_a_failed_neutral_call(bare_manager):
    model = ScriptedModel(default=by_prompt(persona="Four, matey.", neutral=Boom("neutral down")))
    pipeline = PersonaPipeline(
        model, plugin_manager=bare_manager, persona="pirate_captain", ensemble="jekyll_hyde"
    )
    result = await pipeline.run(QUESTION)
    assert result.text == "Four, matey."
    assert result.chosen == "persona"
    [neutral] = [c for c in result.candidates if c.name == "neutral"]
    assert not neutral.ok
    assert "neutral down" in neutral.error
    assert [e.error_type for e in result.errors] == ["CandidateError"]
    assert result.model_calls == 2


async def test_with_jekyll_hyde_the_neutral_answer_survives_a_failed_persona_call(bare_manager):
    model = ScriptedModel(default=by_prompt(persona=Boom("persona down"), neutral="4"))
    pipeline = PersonaPipeline(
        model, plugin_manager=bare_manager, persona="pirate_captain", ensemble="jekyll_hyde"
    )
    result = await pipeline.run(QUESTION)
    assert (result.text, result.chosen) == ("4", "neutral")


@pytest.mark.timeout(20)
async def test_a_stalled_model_call_times_out_instead_of_hanging(bare_manager):
    model = ScriptedModel(default=stall)
    pipeline = PersonaPipeline(model, plugin_manager=bare_manager, timeout_s=0.2)
    with pytest.raises(ModelCallError) as info:
        await pipeline.run(QUESTION)
    assert isinstance(info.value.__cause__, TimeoutError)
    assert info.value.messages == [Message.user(QUESTION)]


@pytest.mark.timeout(20)
async def test_a_stalled_neutral_call_fails_only_that_candidate(bare_manager):
    model = ScriptedModel(default=by_prompt(persona="Four, matey.", neutral=stall))
    pipeline = PersonaPipeline(
        model,
        plugin_manager=bare_manager,
        persona="pirate_captain",
        ensemble="jekyll_hyde",
        timeout_s=0.2,
    )
    result = await pipeline.run(QUESTION)
    assert result.text == "Four, matey."
    [neutral] = [c for c in result.candidates if c.name == "neutral"]
    assert neutral.error.startswith("TimeoutError")


@pytest.mark.parametrize(
    "garbage",
    [{"text": "4"}, "4 as a bare string", None, Usage()],
    ids=["dict", "str", "None", "Usage"],
)
async def test_a_model_returning_something_other_than_a_completion_is_an_error(
    bare_manager, garbage
):
    model = ScriptedModel(default=Raw(garbage))
    pipeline = PersonaPipeline(model, plugin_manager=bare_manager)
    with pytest.raises(ModelCallError) as info:
        await pipeline.run(QUESTION)
    assert isinstance(info.value.__cause__, TypeError)
    assert "expected persona_plugins.Completion" in str(info.value)


async def test_a_model_answer_that_is_garbage_in_one_candidate_leaves_the_other(bare_manager):
    model = ScriptedModel(default=by_prompt(persona=Raw({"oops": 1}), neutral="4"))
    pipeline = PersonaPipeline(
        model, plugin_manager=bare_manager, persona="pirate_captain", ensemble="jekyll_hyde"
    )
    result = await pipeline.run(QUESTION)
    assert result.text == "4"
    assert "expected persona_plugins.Completion" in result.errors[0].error


@pytest.mark.parametrize("blank", ["", "   \n"])
async def test_an_empty_model_answer_is_not_returned_as_the_answer(bare_manager, blank):
    model = ScriptedModel(default=Completion(text=blank))
    with pytest.raises(ModelCallError, match="empty answer"):
        await PersonaPipeline(model, plugin_manager=bare_manager).run(QUESTION)


async def test_guardrail_violations_raised_by_a_plugin_are_not_swallowed(bare_manager):
    class Strict:
        @hookimpl
        def check_response(self, response):
            raise GuardrailViolation("no", findings=[FINDING])

    with registered(bare_manager, Strict()), pytest.raises(GuardrailViolation):
        await PersonaPipeline(ScriptedModel(), plugin_manager=bare_manager, guard="monitor").run(
            QUESTION
        )


# -- messages ------------------------------------------------------------------------------------


def test_a_string_is_one_user_message():
    assert normalize_messages("Hello") == [Message.user("Hello")]


def test_mappings_and_messages_are_accepted_and_message_objects_kept():
    original = Message.assistant("Earlier answer.")
    messages = normalize_messages(
        ({"role": "system", "content": "Be brief."}, original, {"role": "user", "content": "Hi"})
    )
    assert messages == [Message.system("Be brief."), original, Message.user("Hi")]
    assert messages[1] is original


def test_a_generator_of_messages_is_accepted():
    assert normalize_messages(Message.user(t) for t in ("a", "b")) == [
        Message.user("a"),
        Message.user("b"),
    ]


@pytest.mark.parametrize(
    ("messages", "where"),
    [
        (
            [{"role": "user", "content": "ok"}, {"role": "wizard", "content": "x"}],
            "messages[1].role",
        ),
        ([{"role": "user"}], "messages[0].content"),
        ([{"content": "no role"}], "messages[0].role"),
        ([{"role": "user", "content": ["image", "parts"]}], "messages[0].content"),
        ([{"role": "user", "content": "x", "colour": "red"}], "messages[0].colour"),
        ([Message.user("ok"), Message.user("ok"), 42], "messages[2]"),
        ([Message.user("ok"), None], "messages[1]"),
    ],
)
def test_a_malformed_message_is_named_by_its_index(messages, where):
    with pytest.raises(MessageError) as info:
        normalize_messages(messages)
    assert str(info.value).startswith(where)


@pytest.mark.parametrize(
    "messages",
    ["", "   ", [], b"bytes", {"role": "user", "content": "a mapping, not a list"}, None, 42],
    ids=["empty", "blank", "no-messages", "bytes", "mapping", "None", "int"],
)
def test_input_that_is_not_a_conversation_is_rejected(messages):
    with pytest.raises(MessageError):
        normalize_messages(messages)


async def test_bad_messages_are_rejected_before_any_model_call(bare_manager):
    model = ScriptedModel()
    with pytest.raises(MessageError, match=r"messages\[0\]\.role"):
        await PersonaPipeline(model, plugin_manager=bare_manager).run(
            [{"role": "x", "content": "y"}]
        )
    assert model.calls == []


# -- the guard stage -----------------------------------------------------------------------------


class Detector:
    def __init__(self, findings: list[Finding], *, awaitable: bool = False):
        self.findings = findings
        self.awaitable = awaitable
        self.responses: list[str] = []

    @hookimpl
    def check_response(self, response):
        self.responses.append(response)
        if not self.awaitable:
            return self.findings

        async def check() -> list[Finding]:
            return self.findings

        return check()


class Resolver:
    def __init__(self, resolution: Resolution):
        self.resolution = resolution
        self.seen: list[dict[str, Any]] = []

    @hookimpl
    def resolve_findings(self, response, findings, candidates):
        self.seen.append(
            {"response": response, "findings": list(findings), "candidates": candidates}
        )
        return self.resolution


@pytest.mark.parametrize("awaitable", [False, True])
async def test_monitor_mode_records_findings_and_allows_the_response(bare_manager, awaitable):
    detector = Detector([FINDING], awaitable=awaitable)
    with registered(bare_manager, detector, Resolver(Resolution(action="block"))):
        pipeline = PersonaPipeline(ScriptedModel("4"), plugin_manager=bare_manager, guard="monitor")
        result = await pipeline.run(QUESTION)
    assert detector.responses == ["4"]
    assert result.findings == [FINDING]
    assert result.action == "allow"
    assert result.text == "4"


async def test_enforce_mode_blocks_with_a_guardrail_violation_keeping_everything(bare_manager):
    resolver = Resolver(Resolution(action="block", reason="stereotype"))
    conversation = [Message.user(QUESTION)]
    with registered(bare_manager, Detector([FINDING]), resolver):
        pipeline = PersonaPipeline(ScriptedModel("4"), plugin_manager=bare_manager, guard="enforce")
        with pytest.raises(GuardrailViolation) as info:
            await pipeline.run(conversation)
    error = info.value
    assert str(error) == "stereotype"
    assert error.findings == [FINDING]
    assert error.messages == conversation
    assert error.response == "4"
    assert resolver.seen[0]["findings"] == [FINDING]


async def test_enforce_mode_may_replace_the_response(bare_manager):
    resolver = Resolver(Resolution(action="fallback", text="a neutral answer"))
    with registered(bare_manager, Detector([FINDING]), resolver):
        pipeline = PersonaPipeline(
            ScriptedModel(default=by_prompt(persona="Four, matey.", neutral="a neutral answer")),
            plugin_manager=bare_manager,
            persona="pirate_captain",
            ensemble="jekyll_hyde",
            guard="enforce",
        )
        result = await pipeline.run(QUESTION)
    assert (result.text, result.action) == ("a neutral answer", "fallback")
    assert sorted(c.name for c in resolver.seen[0]["candidates"]) == ["neutral", "persona"]


async def test_an_annotation_without_text_keeps_the_response(bare_manager):
    with registered(bare_manager, Detector([FINDING]), Resolver(Resolution(action="annotate"))):
        pipeline = PersonaPipeline(ScriptedModel("4"), plugin_manager=bare_manager, guard="enforce")
        result = await pipeline.run(QUESTION)
    assert (result.text, result.action, result.findings) == ("4", "annotate", [FINDING])


async def test_enforce_mode_with_no_resolver_allows_the_response(bare_manager):
    with registered(bare_manager, Detector([FINDING])):
        pipeline = PersonaPipeline(ScriptedModel("4"), plugin_manager=bare_manager, guard="enforce")
        result = await pipeline.run(QUESTION)
    assert (result.text, result.action, result.findings) == ("4", "allow", [FINDING])


async def test_findings_of_every_detector_are_collected(bare_manager):
    other = Finding(detector="other", message="also found")
    with registered(bare_manager, Detector([FINDING]), Detector([]), Detector([other])):
        pipeline = PersonaPipeline(ScriptedModel(), plugin_manager=bare_manager, guard="monitor")
        result = await pipeline.run(QUESTION)
    assert sorted(f.detector for f in result.findings) == ["other", "test_detector"]


# -- the refine stage ----------------------------------------------------------------------------


class Refining:
    """Registers refiners and returns a fixed plan; optionally merges parallel reviews."""

    def __init__(self, refiners, plan: RefinementPlan | None, merged: str | None = None):
        self.refiners = refiners
        self.plan = plan
        self.merged = merged
        self.merge_calls: list[list[str]] = []
        self.offered: list[list[str]] = []

    @hookimpl
    def register_refiners(self, register):
        for refiner in self.refiners:
            register(refiner)

    @hookimpl
    def plan_refinement(self, refiners):
        self.offered.append(sorted(refiners))
        return self.plan

    @hookimpl
    def merge_reviews(self, reviews):
        self.merge_calls.append([r.refiner for r in reviews])
        return self.merged


def refine_pipeline(pm, refining: Refining, model=None, **config) -> PersonaPipeline:
    names = [r.name for r in refining.refiners]
    config.setdefault("refiners", names)
    config.setdefault("refine", "sequential")
    return PersonaPipeline(model or ScriptedModel("draft"), plugin_manager=pm, **config)


async def test_sequential_refinement_applies_each_revision_in_plan_order(bare_manager):
    first = ScriptedRefiner("exclaim", lambda d: d + "!")
    second = ScriptedRefiner("shout", lambda d: d.upper())
    refining = Refining([first, second], RefinementPlan(refiners=["exclaim", "shout"]))
    with registered(bare_manager, refining):
        result = await refine_pipeline(bare_manager, refining).run(QUESTION)
    assert first.seen == ["draft"]
    assert second.seen == ["draft!"]
    assert result.text == "DRAFT!"
    assert [(r.refiner, r.round, r.needs_change) for r in result.reviews] == [
        ("exclaim", 1, True),
        ("shout", 1, True),
    ]
    assert result.refinement_plan.refiners == ["exclaim", "shout"]


async def test_refinement_stops_when_no_reviewer_asks_for_a_change(bare_manager):
    shout = ScriptedRefiner("shout", lambda d: d.upper())
    refining = Refining([shout], RefinementPlan(refiners=["shout"]))
    with registered(bare_manager, refining):
        result = await refine_pipeline(bare_manager, refining, max_rounds=5).run(QUESTION)
    assert result.text == "DRAFT"
    assert shout.seen == ["draft", "DRAFT"]
    assert [(r.round, r.needs_change) for r in result.reviews] == [(1, True), (2, False)]


async def test_refinement_stops_at_the_round_limit(bare_manager):
    grow = ScriptedRefiner("grow", lambda d: d + "+")
    refining = Refining([grow], RefinementPlan(refiners=["grow"]))
    with registered(bare_manager, refining):
        result = await refine_pipeline(bare_manager, refining, max_rounds=3).run(QUESTION)
    assert result.text == "draft+++"
    assert [r.round for r in result.reviews] == [1, 2, 3]


async def test_the_planner_is_offered_only_the_configured_refiners(bare_manager):
    a, b = ScriptedRefiner("a", lambda d: None), ScriptedRefiner("b", lambda d: None)
    refining = Refining([a, b], RefinementPlan(refiners=["a", "b"]))
    with registered(bare_manager, refining):
        result = await refine_pipeline(bare_manager, refining, refiners=["b"]).run(QUESTION)
    assert refining.offered == [["b"]]
    assert [r.refiner for r in result.reviews] == ["b"]
    assert a.seen == []


async def test_an_empty_plan_leaves_the_draft_alone(bare_manager):
    shout = ScriptedRefiner("shout", lambda d: d.upper())
    refining = Refining([shout], RefinementPlan(refiners=[]))
    with registered(bare_manager, refining):
        result = await refine_pipeline(bare_manager, refining).run(QUESTION)
    assert (result.text, result.reviews) == ("draft", [])


async def test_a_failing_reviewer_is_recorded_and_the_draft_kept(bare_manager):
    broken = ScriptedRefiner("broken", lambda d: "never", error=Boom("reviewer crashed"))
    refining = Refining([broken], RefinementPlan(refiners=["broken"]))
    with registered(bare_manager, refining):
        result = await refine_pipeline(bare_manager, refining).run(QUESTION)
    assert result.text == "draft"
    assert "reviewer crashed" in result.reviews[0].error


async def test_reviewers_model_calls_count_toward_the_turn(bare_manager):
    checker = ScriptedRefiner("checker", lambda d: None, model_prompt="Is this right?")
    refining = Refining([checker], RefinementPlan(refiners=["checker"]))
    model = ScriptedModel()
    with registered(bare_manager, refining):
        result = await refine_pipeline(bare_manager, refining, model=model).run(QUESTION)
    assert result.model_calls == 2
    assert model.calls[1] == [Message.user("Is this right?")]


async def test_parallel_reviews_are_merged_by_a_merge_plugin(bare_manager):
    a = ScriptedRefiner("a", lambda d: d + " (a)")
    b = ScriptedRefiner("b", lambda d: d + " (b)")
    quiet = ScriptedRefiner("quiet", lambda d: None)
    refining = Refining(
        [a, b, quiet], RefinementPlan(refiners=["a", "b", "quiet"], parallel=True), merged="merged"
    )
    with registered(bare_manager, refining):
        result = await refine_pipeline(bare_manager, refining, max_rounds=1).run(QUESTION)
    assert a.seen == b.seen == quiet.seen == ["draft"]
    assert refining.merge_calls == [["a", "b"]]
    assert result.text == "merged"


async def test_parallel_reviews_without_a_merge_keep_the_draft(bare_manager):
    a = ScriptedRefiner("a", lambda d: d + " (a)")
    refining = Refining([a], RefinementPlan(refiners=["a"], parallel=True), merged=None)
    with registered(bare_manager, refining):
        result = await refine_pipeline(bare_manager, refining, max_rounds=3).run(QUESTION)
    assert result.text == "draft"
    assert len(result.reviews) == 1


def test_registering_something_that_is_not_a_refiner_fails_at_construction(bare_manager):
    from persona_plugins import ConfigError

    class Broken:
        @hookimpl
        def register_refiners(self, register):
            register("factuality")

    with registered(bare_manager, Broken()), pytest.raises(ConfigError, match="'review' method"):
        PersonaPipeline(ScriptedModel(), plugin_manager=bare_manager)


# -- prepare and streaming -----------------------------------------------------------------------


async def test_prepare_returns_the_injected_prompt_keeping_the_original_messages(bare_manager):
    history = [Message.user("Hi"), Message.assistant("Ahoy!"), Message.user(QUESTION)]
    model = ScriptedModel()
    pipeline = PersonaPipeline(model, plugin_manager=bare_manager, persona="pirate_captain")
    prepared = await pipeline.prepare(history)
    assert prepared.persona.name == "pirate_captain"
    assert prepared.prompt[0] == Message.system(prepared.system_prompt)
    assert all(a is b for a, b in zip(prepared.prompt[1:], history, strict=True))
    assert model.calls == []


async def test_prepare_without_a_persona_returns_the_messages_themselves(bare_manager):
    history = [Message.user(QUESTION)]
    prepared = await PersonaPipeline(ScriptedModel(), plugin_manager=bare_manager).prepare(history)
    assert prepared.persona is None
    assert prepared.prompt[0] is history[0]


@pytest.mark.parametrize(
    ("config", "can_stream"),
    [
        ({}, True),
        ({"persona": "pirate_captain"}, True),
        ({"persona_mode": "none"}, True),
        ({"ensemble": "jekyll_hyde"}, False),
        ({"refine": "adaptive"}, False),
        ({"guard": "monitor"}, False),
        ({"persona_mode": "generated"}, False),
        ({"persona_mode": "multi"}, False),
    ],
)
def test_a_turn_can_stream_only_when_the_answer_is_the_models_own_output(
    bare_manager, config, can_stream
):
    pipeline = PersonaPipeline(ScriptedModel(), plugin_manager=bare_manager, **config)
    assert pipeline.can_stream is can_stream


async def test_turns_of_one_pipeline_can_run_concurrently(bare_manager):
    model = ScriptedModel(default=lambda messages: messages[-1].content.upper())
    pipeline = PersonaPipeline(model, plugin_manager=bare_manager)
    results = await asyncio.gather(*(pipeline.run(f"q{i}") for i in range(5)))
    assert [r.text for r in results] == [f"Q{i}" for i in range(5)]
    assert all(r.model_calls == 1 for r in results)


def test_the_persona_type_is_what_the_result_carries(bare_manager, teacher):
    result = PersonaPipeline(
        ScriptedModel(), plugin_manager=bare_manager, persona=teacher
    ).run_sync(QUESTION)
    assert isinstance(result.persona, Persona)
    assert result.persona is teacher
