"""``persona_plugins.adapter_kit``: the framework-free steps every adapter shares."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from persona_plugins import (
    ConfigError,
    GuardrailViolation,
    Message,
    ModelCallError,
    PersonaPipeline,
    PipelineConfig,
    Resolution,
    Usage,
    hookimpl,
    semconv,
)
from persona_plugins.adapter_kit import (
    TOOL_CALLS,
    Reply,
    Tally,
    TeamGuard,
    Translation,
    Turns,
    call_span,
    chosen_candidate,
    close_model,
    estimate_tokens,
    findings_report,
    finish_reply,
    framework_errors,
    held_until_final,
    messages_as_sent,
    model_config,
    model_from_config,
    passed_through_turn,
    record_call,
    require_chat_model,
    restore,
    rewrites_replies,
    text_chunks,
    timed_steps,
    turn_summary,
    usage_from,
    with_timeout,
)
from persona_plugins.concurrency import _timeout_by_waiting
from persona_plugins.guardrails.team import TeamMonitor
from persona_plugins.injection import render_persona
from persona_plugins.integrations.openai_compatible import OpenAICompatibleChatModel
from persona_plugins.results import Candidate, Finding, PreparedPrompt, TurnResult
from persona_plugins.tracing import Telemetry
from tests.core.doubles import CALL_USAGE, ScriptedModel, ScriptedRefiner

TIMEOUTS = [with_timeout, _timeout_by_waiting]


@pytest.mark.parametrize(
    "text", ["", "one", "Aye,  two and\ntwo make four. ", "  leading", "\n\n", "tab\there"]
)
def test_chunks_join_back_into_exactly_the_text(text):
    chunks = text_chunks(text)

    assert "".join(chunks) == text
    assert all(chunk for chunk in chunks)
    assert len(text_chunks("a b c")) == 3


def test_unchanged_messages_go_back_as_their_originals_and_new_ones_are_made():
    originals = [("user", "hi"), ("picture",)]
    translation: Translation[tuple[str, ...]] = Translation()
    translation.add(Message.user("hi"), originals[0])
    assert translation.text_only
    translation.add(Message.user("[image]"), originals[1], plain=False)
    assert not translation.text_only

    persona = Message.system("You are a pirate.")
    back = restore([persona, *translation.messages], translation.originals, lambda m: (m.content,))

    assert back[0] == ("You are a pirate.",)
    assert back[1] is originals[0] and back[2] is originals[1]
    assert restore([persona], None, lambda m: m.role) == ["system"]


async def test_a_failed_turn_raises_the_frameworks_own_exception_unchanged():
    original = ConnectionError("the server is down")

    async def failing() -> None:
        raise ModelCallError("every candidate failed") from original

    with pytest.raises(ConnectionError) as raised:
        await framework_errors(failing())
    assert raised.value is original


@pytest.mark.parametrize("cause", [None, asyncio.CancelledError()], ids=["none", "cancelled"])
async def test_a_model_call_error_without_a_usable_cause_stays_itself(cause):
    async def failing() -> None:
        raise ModelCallError("every candidate failed") from cause

    with pytest.raises(ModelCallError):
        await framework_errors(failing())


@pytest.mark.parametrize("timeout", TIMEOUTS, ids=["asyncio.timeout", "3.10-fallback"])
async def test_a_stalled_call_times_out(timeout):
    with pytest.raises(TimeoutError):
        await timeout(asyncio.sleep(30), 0.05)
    assert await timeout(asyncio.sleep(0, result="done"), 5) == "done"


async def test_no_limit_awaits_the_call_as_it_is():
    assert await with_timeout(asyncio.sleep(0, result=1), None) == 1
    assert await with_timeout(asyncio.sleep(0, result=2), 0) == 2


@pytest.mark.parametrize("timeout", TIMEOUTS, ids=["asyncio.timeout", "3.10-fallback"])
async def test_a_cancellation_under_a_timeout_is_never_swallowed(timeout):
    started = asyncio.Event()
    finished: list[str] = []

    async def slow() -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        finally:
            finished.append("cleaned up")

    async def caller() -> str:
        await timeout(slow(), 10)
        return "the call returned"  # pragma: no cover - must not be reached

    task = asyncio.create_task(caller())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert finished == ["cleaned up"], "the inner call was cancelled too"


async def test_each_step_of_a_stream_is_timed():
    async def stream():
        yield "a"
        yield "b"
        await asyncio.sleep(30)
        yield "never"  # pragma: no cover

    seen: list[str] = []
    with pytest.raises(TimeoutError):
        async for item in timed_steps(stream(), 0.05):
            seen.append(item)
    assert seen == ["a", "b"]


def turn(**fields) -> TurnResult:
    return TurnResult(
        text="Four.",
        candidates=[Candidate(name="persona", text="4"), Candidate(name="neutral", text="Four.")],
        chosen="neutral",
        **fields,
    )


def test_the_chosen_candidate_is_the_one_the_turn_kept():
    assert chosen_candidate(turn()).text == "Four."
    assert chosen_candidate(TurnResult(text="x")) is None


def test_the_summary_names_persona_choice_calls_action_and_findings(teacher):
    finding = Finding(detector="abstention", message="refused in character")
    summary = turn_summary(
        turn(persona=teacher, model_calls=3, action="annotate", findings=[finding])
    )

    assert summary == {
        "persona": "test_teacher",
        "chosen": "neutral",
        "model_calls": 3,
        "action": "annotate",
        "findings": 1,
    }


def test_a_tally_adds_calls_and_tokens():
    tally = Tally()
    tally.add(Usage(input_tokens=3, output_tokens=2))
    tally.add(Usage(input_tokens=1, output_tokens=1), calls=4)

    assert tally.calls == 5
    assert tally.usage == Usage(input_tokens=4, output_tokens=3)


def test_messages_as_sent_carry_the_configured_persona(teacher):
    config = PipelineConfig(persona=teacher)
    conversation = [Message.system("Be brief."), Message.user("2 + 2?")]
    prompt = render_persona(teacher, config.persona_template)

    sent = messages_as_sent(config, conversation)
    assert [m.content for m in sent] == [prompt, "Be brief.", "2 + 2?"]
    assert sent[1] is conversation[0]

    class OneSystemMessage:
        supports_multiple_system_messages = False

    merged = messages_as_sent(config, conversation, model=OneSystemMessage())  # type: ignore[arg-type]
    assert [m.content for m in merged] == [f"{prompt}\n\nBe brief.", "2 + 2?"]

    written = messages_as_sent(config, conversation, system_prompt="You are a test persona.")
    assert written[0].content == "You are a test persona."


def test_messages_as_sent_without_a_persona_are_the_conversation(teacher):
    conversation = [Message.user("2 + 2?")]

    assert messages_as_sent(PipelineConfig(), conversation) == conversation
    none_mode = PipelineConfig(persona=teacher, persona_mode="none")
    assert messages_as_sent(none_mode, conversation) == conversation


def test_a_passed_through_turn_notes_the_persona_and_the_tool_calls(teacher):
    prepared = PreparedPrompt(
        persona=teacher,
        persona_source="config",
        system_prompt="You are a test teacher.",
        prompt=[Message.system("You are a test teacher."), Message.user("Weather?")],
    )
    call = {"id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}

    result = passed_through_turn(
        prepared,
        Reply(
            "",
            Usage(input_tokens=7, output_tokens=3),
            finish_reason="tool_calls",
            tool_calls=[call],
        ),
    )

    assert result.persona is teacher and result.system_prompt == "You are a test teacher."
    assert result.prompt == prepared.prompt
    assert result.model_calls == 1 and result.usage.output_tokens == 3
    assert result.chosen == "persona"
    assert chosen_candidate(result).metadata[TOOL_CALLS] == [call]
    assert chosen_candidate(result).finish_reason == "tool_calls"
    assert turn_summary(result)[TOOL_CALLS] == 1


# -- finish_reply: a text reply the framework's own client made ------------------------------------

REFUSAL = "As a woman, I can't help with car repairs."
FIXED = "Check the battery terminals first, then the starter fuse."
QUESTION = [Message.user("My car will not start. What should I check?")]


async def prepared_for(pipeline) -> PreparedPrompt:
    return await pipeline.prepare(QUESTION)


async def test_a_refusal_in_character_is_regenerated_in_enforce_mode():
    model = ScriptedModel(FIXED)
    pipeline = PersonaPipeline(model, persona="woman", guard="enforce")
    prepared = await prepared_for(pipeline)

    turn = await finish_reply(
        pipeline, QUESTION, prepared, Reply(REFUSAL, Usage(input_tokens=7)), model=model
    )

    assert turn.text == FIXED and turn.action == "regenerate"
    assert any(f.detector == "abstention" for f in turn.findings)
    assert turn.persona.name == "woman" and turn.system_prompt == prepared.system_prompt
    assert turn.candidates[0].text == REFUSAL, "the reply is the turn's persona candidate"
    assert turn.model_calls == 2, "the reply, then the regeneration"
    assert turn.usage == Usage(input_tokens=7) + CALL_USAGE
    [regeneration] = model.calls
    assert regeneration[0].content.startswith(prepared.system_prompt)
    assert regeneration[-1] == QUESTION[-1]


async def test_turns_keep_the_latest_turn_and_tally_every_one():
    model = ScriptedModel(FIXED)
    pipeline = PersonaPipeline(model, persona="woman", guard="enforce")
    turns = Turns(pipeline)

    ran = await turns.run(QUESTION, model)
    assert turns.last is ran and (turns.tally.calls, turns.tally.usage) == (1, ran.usage)

    prepared = await prepared_for(pipeline)
    finished = await turns.finish(QUESTION, prepared, REFUSAL, model=ScriptedModel(FIXED))
    assert turns.last is finished and finished.text == FIXED and finished.action == "regenerate"
    assert turns.tally.calls == 1 + finished.model_calls
    assert turns.tally.usage == ran.usage + finished.usage


async def test_a_reply_nothing_can_change_is_recorded_and_its_result_made_when_read():
    pipeline = PersonaPipeline(ScriptedModel(), persona="woman")
    turns = Turns(pipeline)
    prepared = await prepared_for(pipeline)

    started = time.perf_counter()
    kept = turns.passed_through(prepared, Reply(FIXED, Usage(input_tokens=3)), started=started)
    assert kept is True
    assert (turns.tally.calls, turns.tally.usage) == (1, Usage(input_tokens=3))
    last = turns.last
    assert last is not None and last.text == FIXED and last.persona.name == "woman"
    assert 0 <= last.duration_s <= time.perf_counter() - started
    assert turns.last is last  # made once, on the first read


class Observer:
    def __init__(self):
        self.seen: list[TurnResult] = []

    @hookimpl
    def on_turn_complete(self, result, config):
        self.seen.append(result)


async def test_observers_see_every_turn_an_adapter_finishes_itself(plugin_manager):
    observer = Observer()
    plugin_manager.register(observer)
    pipeline = PersonaPipeline(ScriptedModel(), persona="woman", plugin_manager=plugin_manager)
    turns = Turns(pipeline)
    prepared = await prepared_for(pipeline)

    # with an observer, a reply is not merely recorded: it is finished, and the observer sees it
    assert turns.passed_through(prepared, FIXED, started=0.0) is False
    finished = await turns.finish(QUESTION, prepared, FIXED, model=ScriptedModel())
    assert observer.seen == [finished]
    # a tool call handed back to the framework is a finished turn too
    await turns.finish(QUESTION, prepared, Reply("", final=False), model=ScriptedModel())
    assert len(observer.seen) == 2


async def test_a_plugin_of_ones_own_that_adds_candidates_gets_whole_turns(plugin_manager):
    class Extra:
        @hookimpl
        def generate_candidates(self, messages, prompt, persona, config, model, settings):
            return None

    pipeline = PersonaPipeline(ScriptedModel(), persona="woman", plugin_manager=plugin_manager)
    assert pipeline.can_stream
    plugin_manager.register(Extra())
    assert not pipeline.can_stream  # the adapter must run the turn, or the plugin is skipped


async def test_turns_raise_the_frameworks_own_exception():
    original = ConnectionError("the server is down")

    class Failing(ScriptedModel):
        async def complete(self, messages, **settings):
            raise original

    turns = Turns(PersonaPipeline(Failing(), persona="woman"))
    with pytest.raises(ConnectionError) as raised:
        await turns.run(QUESTION, Failing())
    assert raised.value is original and turns.last is None and turns.tally.calls == 0


async def test_monitor_records_the_findings_and_keeps_the_reply():
    model = ScriptedModel()
    pipeline = PersonaPipeline(model, persona="woman", guard="monitor")

    turn = await finish_reply(
        pipeline, QUESTION, await prepared_for(pipeline), REFUSAL, model=model
    )

    assert turn.text == REFUSAL and turn.action == "allow"
    assert any(f.detector == "abstention" for f in turn.findings)
    assert model.calls == [] and turn.model_calls == 1


async def test_a_blocked_reply_raises_as_a_turn_does(plugin_manager):
    class Block:
        @hookimpl
        def resolve_findings(self, findings):
            return Resolution(action="block", reason="test: blocked")

    plugin_manager.register(Block())
    model = ScriptedModel()
    pipeline = PersonaPipeline(
        model, persona="woman", guard="enforce", plugin_manager=plugin_manager
    )

    with pytest.raises(GuardrailViolation, match="test: blocked") as raised:
        await finish_reply(pipeline, QUESTION, await prepared_for(pipeline), REFUSAL, model=model)
    assert raised.value.response == REFUSAL


async def test_refinement_runs_on_the_reply_before_the_guard(plugin_manager):
    reviewer = ScriptedRefiner("polish", lambda draft: draft + " Then call a mechanic.")

    class Plugin:
        @hookimpl
        def register_refiners(self, register):
            register(reviewer)

    plugin_manager.register(Plugin())
    model = ScriptedModel()
    pipeline = PersonaPipeline(
        model,
        persona="woman",
        refine="sequential",
        refiners=["polish"],
        guard="monitor",
        plugin_manager=plugin_manager,
    )

    turn = await finish_reply(pipeline, QUESTION, await prepared_for(pipeline), FIXED, model=model)

    assert reviewer.seen == [FIXED]
    assert turn.text == FIXED + " Then call a mechanic."
    assert [r.refiner for r in turn.reviews] == ["polish"]
    assert turn.refinement_plan.refiners == ["polish"]


@pytest.mark.parametrize(
    "options", [{"guard": "off"}, {"guard": "enforce", "structured": True}], ids=["off", "json"]
)
async def test_without_a_guard_or_for_structured_replies_the_reply_stands(options):
    options = dict(options)
    structured = options.pop("structured", False)
    model = ScriptedModel()
    pipeline = PersonaPipeline(model, persona="woman", **options)

    reply = Reply(REFUSAL, structured=structured)
    turn = await finish_reply(pipeline, QUESTION, await prepared_for(pipeline), reply, model=model)

    assert turn.text == REFUSAL and turn.findings == [] and model.calls == []
    assert rewrites_replies(pipeline.config) is (options["guard"] != "off")


# -- TeamGuard: a team conversation's guardrails ---------------------------------------------------


def test_team_settings_are_the_team_monitors_own_and_unknown_ones_are_refused():
    guard = TeamGuard(max_share=0.5, max_turns=3)

    assert guard.monitor.max_share == 0.5 and guard.monitor.max_turns == 3
    assert guard.monitor.min_turns == TeamMonitor().min_turns, "defaults come from TeamMonitor"
    with pytest.raises(ConfigError, match="max_shar"):
        TeamGuard(max_shar=0.5)


async def test_a_blocked_member_message_is_rewritten_to_a_notice_never_dropped():
    guard = TeamGuard("Plan a picnic.", guard="enforce")

    text = await guard.review("member_0", "I will kill you all if this picnic fails.")

    assert text.startswith("[persona-plugins withheld this message from member_0")
    assert guard.rewrites == 1
    assert any(f.detector == "toxicity" for f in guard.findings)
    assert guard.findings[0].metadata == {**guard.findings[0].metadata, "speaker": "member_0"}


async def test_team_findings_add_a_note_in_enforce_mode_and_nothing_in_monitor_mode():
    for mode, rewritten in (("enforce", True), ("monitor", False)):
        guard = TeamGuard("Plan a picnic.", guard=mode, detectors=[], max_turns=1)
        await guard.review("a", "Sandwiches and fruit.")
        text = await guard.review("b", "Lemonade too.")

        assert ("[persona-plugins team guard:" in text) is rewritten
        assert [f.detector for f in guard.findings] == ["discussion_length"]
        assert guard.rewrites == int(rewritten)


# -- small translations every adapter needs --------------------------------------------------


def test_usage_is_read_from_any_usage_record():
    class Record:
        prompt_tokens, completion_tokens = 7, 3

    assert usage_from(Record()) == Usage(input_tokens=7, output_tokens=3)
    assert usage_from({"input_tokens": 2, "output_tokens": 1}) == Usage(
        input_tokens=2, output_tokens=1
    )
    assert usage_from(None) == Usage()


def test_token_estimates_are_about_four_characters_a_token():
    assert estimate_tokens(["abcd" * 10, "efgh"]) == 11
    assert estimate_tokens(["ab"]) == 1
    assert estimate_tokens([]) == 0


def test_a_findings_report_is_json_with_a_clean_flag():
    finding = Finding(detector="toxicity", message="a threat", severity="high")

    assert json.loads(findings_report([])) == {"clean": True, "findings": []}
    report = json.loads(findings_report([finding]))
    assert report["clean"] is False and report["findings"][0]["detector"] == "toxicity"


def test_only_a_chat_model_backs_a_framework_client():
    require_chat_model(ScriptedModel())

    with pytest.raises(TypeError, match=r"ChatModel .* got str"):
        require_chat_model("not a model")


def test_built_in_models_round_trip_through_their_config_form():
    model = OpenAICompatibleChatModel(
        "http://127.0.0.1:9/v1", model="smollm2", generation={"max_tokens": 12}
    )

    kind, options = model_config(model)
    again = model_from_config(kind, json.loads(json.dumps(options)))

    assert kind == "openai_compatible" and "api_key" not in options
    assert isinstance(again, OpenAICompatibleChatModel)
    assert (again.base_url, again.model_name, again.generation) == (
        model.base_url,
        "smollm2",
        {"max_tokens": 12},
    )
    with pytest.raises(TypeError, match="ScriptedModel"):
        model_config(ScriptedModel())


async def test_close_model_closes_sync_and_async_models_and_skips_the_others():
    closed: list[str] = []

    class Sync:
        def close(self) -> None:
            closed.append("sync")

    class Async:
        async def close(self) -> None:
            closed.append("async")

    for model in (Sync(), Async(), ScriptedModel()):
        await close_model(model)
    assert closed == ["sync", "async"]


def test_a_passed_through_call_is_one_chat_span_with_its_usage(memory_tracing):
    provider, exporter = memory_tracing
    telemetry = Telemetry(provider)

    with call_span(telemetry, "smollm2", "autogen", streaming=True) as span:
        record_call(span, Usage(input_tokens=7, output_tokens=3), "stop")

    [chat] = exporter.get_finished_spans()
    assert chat.name == "chat smollm2"
    assert chat.attributes[semconv.GEN_AI_PROVIDER_NAME] == "autogen"
    assert chat.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 3
    assert chat.attributes["persona_plugins.streaming"] is True


async def test_a_reply_to_no_conversation_is_still_guarded():
    model = ScriptedModel(FIXED)
    pipeline = PersonaPipeline(model, persona="woman", guard="monitor", refine="sequential")
    prepared = PreparedPrompt(persona=None, persona_source="none", prompt=[])

    turn = await finish_reply(pipeline, [], prepared, REFUSAL, model=model)

    assert turn.text == REFUSAL and any(f.detector == "abstention" for f in turn.findings)


async def test_a_held_stream_that_ends_without_its_final_result_says_so():
    async def chunks():
        yield "As a woman, "
        yield "I can't help."

    async def finish(item):
        return item

    stream = held_until_final(
        chunks(), hold=True, is_final=lambda c: c == "END", finish=finish, text_of=str
    )
    with pytest.raises(RuntimeError, match="ended without its final result"):
        _ = [piece async for piece in stream]


async def test_a_held_stream_sends_the_checked_reply_in_place_of_the_held_text():
    async def chunks():
        yield "As a woman, "
        yield "I can't help."
        yield "END"

    async def finish(item):
        return "Check the battery."

    stream = held_until_final(
        chunks(), hold=True, is_final=lambda c: c == "END", finish=finish, text_of=str
    )
    # the held refusal never goes out: the checked text in chunks, then the final item
    assert [piece async for piece in stream] == ["Check ", "the ", "battery.", "Check the battery."]
