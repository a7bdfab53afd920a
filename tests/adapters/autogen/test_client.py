"""``PersonaChatCompletionClient``: what an AutoGen user sees when the pipeline wraps their client.

The inner client here is a recording double (it answers from a script and keeps every call), so
the tests can check exactly what reaches the model: the persona system message first, the
caller's own messages as the very same objects, one call per candidate. Real-model runs under
AutoGen agents live in ``test_agents.py``.
"""

from __future__ import annotations

import asyncio
import json

import PIL.Image
import pytest
from autogen_core import CancellationToken, FunctionCall, Image
from autogen_core.model_context import TokenLimitedChatCompletionContext
from autogen_core.models import (
    AssistantMessage,
    ChatCompletionClient,
    CreateResult,
    FunctionExecutionResult,
    FunctionExecutionResultMessage,
    RequestUsage,
    SystemMessage,
    UserMessage,
)
from autogen_core.tools import FunctionTool
from autogen_ext.models.replay import ReplayChatCompletionClient

from persona_plugins import Persona, semconv
from persona_plugins.adapters.autogen import (
    ChatModelCompletionClient,
    PersonaChatCompletionClient,
)
from persona_plugins.injection import render_persona
from persona_plugins.integrations.llama_cpp import LlamaCppChatModel
from persona_plugins.integrations.openai_compatible import OpenAICompatibleChatModel

from .doubles import (
    SINGLE_SYSTEM_MESSAGE,
    WITH_TOOLS_AND_VISION,
    EchoModel,
    RecordingClient,
    StallingModel,
)

AGENT_SYSTEM = "You are a helpful assistant. Answer briefly."
REPLY = "Aye, two and two make four."


def conversation() -> list[SystemMessage | UserMessage]:
    return [
        SystemMessage(content=AGENT_SYSTEM),
        UserMessage(content="What is 2 + 2?", source="user"),
    ]


def persona_prompt(client: PersonaChatCompletionClient) -> str:
    persona = client.pipeline.config.persona
    assert isinstance(persona, Persona)
    return render_persona(persona, client.pipeline.config.persona_template)


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"18 C and sunny in {city}"


async def drain(stream) -> list[str | CreateResult]:
    return [chunk async for chunk in stream]


# -- where the persona goes ----------------------------------------------------------------------


async def test_create_sends_the_persona_system_message_first_and_the_agents_own_after_it():
    inner = RecordingClient()
    client = PersonaChatCompletionClient(inner, persona="pirate_captain")
    messages = conversation()

    result = await client.create(messages)

    assert result.content == REPLY
    [call] = inner.calls
    sent = call["messages"]
    assert isinstance(sent[0], SystemMessage)
    assert sent[0].content == persona_prompt(client)
    assert "pirate captain" in sent[0].content
    assert sent[1] is messages[0], "the agent's own system message comes right after the persona"
    assert sent[2] is messages[1]
    assert len(sent) == 3


async def test_a_model_taking_one_system_message_gets_the_persona_merged_into_the_agents():
    inner = RecordingClient(model_info=SINGLE_SYSTEM_MESSAGE)
    client = PersonaChatCompletionClient(inner, persona="pirate_captain")

    await client.create(conversation())

    sent = inner.calls[0]["messages"]
    system = [m for m in sent if isinstance(m, SystemMessage)]
    assert len(system) == 1
    assert sent[0] is system[0]
    assert sent[0].content.startswith(persona_prompt(client))
    assert sent[0].content.endswith(AGENT_SYSTEM)
    assert [m.content for m in sent[1:]] == ["What is 2 + 2?"]


async def test_a_conversation_without_a_system_message_gets_the_persona_as_its_only_one():
    inner = RecordingClient(model_info=SINGLE_SYSTEM_MESSAGE)
    client = PersonaChatCompletionClient(inner, persona="pirate_captain")
    question = UserMessage(content="What is 2 + 2?", source="user")

    await client.create([question])

    sent = inner.calls[0]["messages"]
    assert isinstance(sent[0], SystemMessage)
    assert sent[0].content == persona_prompt(client)
    assert sent[1] is question


async def test_without_a_persona_the_conversation_reaches_the_model_as_given():
    inner = RecordingClient()
    client = PersonaChatCompletionClient(inner)
    messages = conversation()

    await client.create(messages)

    sent = inner.calls[0]["messages"]
    assert len(sent) == len(messages)
    assert all(a is b for a, b in zip(sent, messages, strict=True))


@pytest.mark.parametrize(
    "overrides",
    [{}, {"ensemble": "jekyll_hyde"}, {"merge_system_messages": True}],
    ids=["persona", "jekyll_hyde", "merged"],
)
async def test_the_callers_messages_are_never_mutated(overrides):
    inner = RecordingClient()
    client = PersonaChatCompletionClient(inner, persona="pirate_captain", **overrides)
    messages = conversation()
    before = [m.model_dump() for m in messages]
    listed = list(messages)

    await client.create(messages)
    await drain(client.create_stream(messages))

    assert messages == listed
    assert [m.model_dump() for m in messages] == before


# -- usage and call counts -----------------------------------------------------------------------


async def test_a_persona_turn_is_one_model_call_with_that_calls_usage():
    inner = RecordingClient(usage=RequestUsage(prompt_tokens=12, completion_tokens=5))
    client = PersonaChatCompletionClient(inner, persona="pirate_captain")

    result = await client.create(conversation())

    assert len(inner.calls) == 1
    assert client.model_calls == 1
    assert result.usage == RequestUsage(prompt_tokens=12, completion_tokens=5)
    assert result.finish_reason == "stop"
    assert result.cached is False
    assert client.last_result is not None
    assert client.last_result.persona is not None
    assert client.last_result.persona.name == "pirate_captain"


async def test_usage_sums_every_call_the_jekyll_hyde_turn_made():
    inner = RecordingClient(usage=RequestUsage(prompt_tokens=12, completion_tokens=5))
    client = PersonaChatCompletionClient(inner, persona="pirate_captain", ensemble="jekyll_hyde")
    messages = conversation()

    result = await client.create(messages)

    # Persona and neutral answers agree, so no judge call is needed: exactly two calls.
    assert len(inner.calls) == 2
    assert client.model_calls == 2
    assert result.usage == RequestUsage(prompt_tokens=24, completion_tokens=10)
    assert client.total_usage() == RequestUsage(prompt_tokens=24, completion_tokens=10)
    heads = sorted(call["messages"][0].content for call in inner.calls)
    assert heads == sorted([persona_prompt(client), AGENT_SYSTEM]), (
        "one candidate answers as the persona, the other (neutral) sees the caller's messages"
    )
    neutral = next(c for c in inner.calls if c["messages"][0].content == AGENT_SYSTEM)
    assert all(a is b for a, b in zip(neutral["messages"], messages, strict=True))


async def test_usage_and_call_counts_accumulate_across_turns_of_every_kind():
    scripted_tool_call = CreateResult(
        finish_reason="function_calls",
        content=[FunctionCall(id="call_1", name="get_weather", arguments='{"city": "Paris"}')],
        usage=RequestUsage(prompt_tokens=7, completion_tokens=3),
        cached=False,
    )
    inner = RecordingClient(
        [scripted_tool_call, REPLY, REPLY, REPLY],
        usage=RequestUsage(prompt_tokens=12, completion_tokens=5),
        model_info=WITH_TOOLS_AND_VISION,
    )
    client = PersonaChatCompletionClient(inner, persona="pirate_captain", ensemble="jekyll_hyde")
    tool = FunctionTool(get_weather, description="The weather in a city.")

    await client.create(conversation(), tools=[tool])
    await client.create(conversation())
    await drain(client.create_stream(conversation(), tools=[tool]))

    assert client.model_calls == 1 + 2 + 1 == len(inner.calls)
    assert client.total_usage() == RequestUsage(
        prompt_tokens=7 + 24 + 12, completion_tokens=3 + 10 + 5
    )
    assert client.actual_usage() == client.total_usage()


# -- streaming -----------------------------------------------------------------------------------


def check_stream_shape(chunks: list[str | CreateResult]) -> CreateResult:
    assert chunks, "a stream yields at least the final result"
    *texts, last = chunks
    assert isinstance(last, CreateResult)
    assert all(isinstance(t, str) for t in texts), "only the last item is a CreateResult"
    assert texts, "text chunks come before the final result"
    assert last.content == "".join(texts)
    return last


async def test_a_persona_only_stream_passes_the_inner_clients_own_stream_through():
    inner = RecordingClient(usage=RequestUsage(prompt_tokens=12, completion_tokens=5))
    client = PersonaChatCompletionClient(inner, persona="pirate_captain")

    chunks = await drain(client.create_stream(conversation()))

    last = check_stream_shape(chunks)
    assert last.content == REPLY
    assert len(chunks) > 2, "the inner client's word-by-word chunks arrive one by one"
    assert [c["kind"] for c in inner.calls] == ["stream"]
    assert inner.calls[0]["messages"][0].content == persona_prompt(client)
    assert client.model_calls == 1
    assert client.total_usage() == RequestUsage(prompt_tokens=12, completion_tokens=5)


async def test_a_jekyll_hyde_stream_runs_the_turn_then_streams_its_final_text():
    inner = RecordingClient(usage=RequestUsage(prompt_tokens=12, completion_tokens=5))
    client = PersonaChatCompletionClient(inner, persona="pirate_captain", ensemble="jekyll_hyde")

    chunks = await drain(client.create_stream(conversation()))

    last = check_stream_shape(chunks)
    assert last.content == REPLY == client.last_result.text
    assert len(chunks) > 2
    assert [c["kind"] for c in inner.calls] == ["create", "create"]
    assert last.usage == RequestUsage(prompt_tokens=24, completion_tokens=10)
    assert client.model_calls == 2


async def test_streamed_text_keeps_its_exact_whitespace():
    reply = "Ahoy!\n\n  Two and two:\tfour.  "
    inner = RecordingClient([reply])
    client = PersonaChatCompletionClient(inner, persona="pirate_captain", ensemble="jekyll_hyde")

    chunks = await drain(client.create_stream(conversation()))

    last = check_stream_shape(chunks)
    assert last.content == client.last_result.text


# -- tool calls and non-text content pass through --------------------------------------------------


@pytest.mark.parametrize("ensemble", ["off", "jekyll_hyde"])
async def test_a_tool_call_turn_passes_through_with_the_tools_and_comes_back_untouched(ensemble):
    scripted = CreateResult(
        finish_reason="function_calls",
        content=[FunctionCall(id="call_1", name="get_weather", arguments='{"city": "Paris"}')],
        usage=RequestUsage(prompt_tokens=7, completion_tokens=3),
        cached=False,
    )
    inner = RecordingClient([scripted], model_info=WITH_TOOLS_AND_VISION)
    client = PersonaChatCompletionClient(inner, persona="pirate_captain", ensemble=ensemble)
    tool = FunctionTool(get_weather, description="The weather in a city.")
    messages = conversation()

    result = await client.create(messages, tools=[tool], tool_choice="auto")

    assert result is scripted
    assert isinstance(result.content, list)
    assert result.content[0] == FunctionCall(
        id="call_1", name="get_weather", arguments='{"city": "Paris"}'
    )
    [call] = inner.calls  # a tool turn is never ensembled
    assert call["tools"] == [tool]
    assert call["tool_choice"] == "auto"
    assert call["messages"][0].content == persona_prompt(client)
    assert call["messages"][1:] == messages
    assert all(a is b for a, b in zip(call["messages"][1:], messages, strict=True))
    turn = client.last_result
    assert turn is not None, "a tool-call turn is described like any other"
    assert turn.persona.name == "pirate_captain"
    assert turn.system_prompt == persona_prompt(client)
    assert turn.model_calls == 1 and turn.usage.output_tokens == 3
    assert turn.candidates[0].metadata["tool_calls"] == [
        {"id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}
    ]
    assert turn.candidates[0].finish_reason == "function_calls"


async def test_function_call_history_reaches_the_model_as_the_very_same_objects():
    inner = RecordingClient(model_info=WITH_TOOLS_AND_VISION)
    client = PersonaChatCompletionClient(inner, persona="pirate_captain", ensemble="jekyll_hyde")
    history = [
        SystemMessage(content=AGENT_SYSTEM),
        UserMessage(content="Weather in Paris?", source="user"),
        AssistantMessage(
            content=[FunctionCall(id="call_1", name="get_weather", arguments='{"city": "Paris"}')],
            thought="I should look it up.",
            source="captain",
        ),
        FunctionExecutionResultMessage(
            content=[
                FunctionExecutionResult(
                    content="18 C and sunny in Paris", name="get_weather", call_id="call_1"
                )
            ]
        ),
    ]

    result = await client.create(history)

    assert result.content == REPLY
    [call] = inner.calls
    sent = call["messages"]
    assert sent[0].content == persona_prompt(client)
    assert len(sent) == len(history) + 1
    assert all(a is b for a, b in zip(sent[1:], history, strict=True))
    assert sent[3].thought == "I should look it up."


async def test_image_content_reaches_the_model_untouched():
    inner = RecordingClient(model_info=WITH_TOOLS_AND_VISION)
    client = PersonaChatCompletionClient(inner, persona="pirate_captain", ensemble="jekyll_hyde")
    picture = Image.from_pil(PIL.Image.new("RGB", (4, 4), color=(200, 30, 30)))
    question = UserMessage(content=["What colour is this?", picture], source="user")

    await client.create([SystemMessage(content=AGENT_SYSTEM), question])
    await drain(client.create_stream([question]))

    create_call, stream_call = inner.calls
    assert [c["kind"] for c in inner.calls] == ["create", "stream"]
    assert create_call["messages"][-1] is question
    assert create_call["messages"][-1].content[1] is picture
    assert stream_call["messages"][-1] is question
    assert create_call["messages"][0].content == persona_prompt(client)


async def test_json_output_turns_pass_through_with_the_persona_only():
    inner = RecordingClient(['{"answer": 4}', '{"answer": 4}'], model_info=WITH_TOOLS_AND_VISION)
    client = PersonaChatCompletionClient(inner, persona="pirate_captain", ensemble="jekyll_hyde")

    result = await client.create(conversation(), json_output=True)

    assert result.content == '{"answer": 4}'
    [call] = inner.calls
    assert call["json_output"] is True
    assert call["messages"][0].content == persona_prompt(client)


# -- settings reach the inner client -----------------------------------------------------------


async def test_extra_create_args_and_the_pipelines_model_settings_reach_the_inner_client():
    inner = RecordingClient()
    client = PersonaChatCompletionClient(
        inner, persona="pirate_captain", ensemble="jekyll_hyde", model_settings={"max_tokens": 48}
    )

    await client.create(conversation(), extra_create_args={"temperature": 0.2})

    assert len(inner.calls) == 2
    for call in inner.calls:
        assert call["extra_create_args"] == {"temperature": 0.2, "max_tokens": 48}


@pytest.mark.parametrize("path", ["stream", "tools", "json"])
async def test_model_settings_bound_every_inner_call_including_direct_ones(path):
    inner = RecordingClient(model_info=WITH_TOOLS_AND_VISION)
    client = PersonaChatCompletionClient(
        inner, persona="pirate_captain", model_settings={"max_tokens": 48}
    )
    tool = FunctionTool(get_weather, description="The weather in a city.")

    if path == "stream":
        await drain(client.create_stream(conversation()))
    elif path == "tools":
        await client.create(conversation(), tools=[tool])
    else:
        await client.create(conversation(), json_output=True)

    assert inner.calls[0]["extra_create_args"].get("max_tokens") == 48


# -- cancellation and errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ensemble", "path"),
    [("off", "create"), ("jekyll_hyde", "create"), ("jekyll_hyde", "stream")],
)
async def test_a_cancelled_token_cancels_a_pipeline_turn_before_any_model_call(ensemble, path):
    inner = RecordingClient()
    client = PersonaChatCompletionClient(inner, persona="pirate_captain", ensemble=ensemble)
    token = CancellationToken()
    token.cancel()

    with pytest.raises(asyncio.CancelledError):
        if path == "create":
            await client.create(conversation(), cancellation_token=token)
        else:
            await drain(client.create_stream(conversation(), cancellation_token=token))

    assert inner.calls == []


@pytest.mark.parametrize("ensemble", ["off", "jekyll_hyde"])
@pytest.mark.parametrize("streaming", [False, True], ids=["create", "stream"])
async def test_cancelling_the_token_mid_call_cancels_the_turn(ensemble, streaming):
    model = StallingModel()
    client = PersonaChatCompletionClient(
        ChatModelCompletionClient(model), persona="pirate_captain", ensemble=ensemble
    )
    token = CancellationToken()
    if streaming:
        call = drain(client.create_stream(conversation(), cancellation_token=token))
    else:
        call = client.create(conversation(), cancellation_token=token)
    task = asyncio.ensure_future(call)

    await asyncio.wait_for(model.started.wait(), timeout=30)
    token.cancel()
    done, _ = await asyncio.wait({task}, timeout=30)

    assert task in done, "the turn did not stop when its cancellation token was cancelled"
    assert task.cancelled()


async def finish_within(call, seconds: float):
    """Run ``call``; return its task once done, or fail (after cancelling it) if it hangs."""
    task = asyncio.ensure_future(call)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if task not in done:
        task.cancel()
        pytest.fail(f"the call was still waiting after {seconds} s")
    return task


@pytest.mark.parametrize("ensemble", ["off", "jekyll_hyde"])
async def test_a_stalled_inner_client_times_out_under_timeout_s(ensemble):
    model = StallingModel()
    client = PersonaChatCompletionClient(
        ChatModelCompletionClient(model), persona="pirate_captain", ensemble=ensemble, timeout_s=0.2
    )

    task = await finish_within(client.create(conversation()), 30)

    assert isinstance(task.exception(), TimeoutError)
    assert model.calls >= 1


async def test_a_stalled_inner_stream_times_out_under_timeout_s():
    model = StallingModel()
    client = PersonaChatCompletionClient(
        ChatModelCompletionClient(model), persona="pirate_captain", timeout_s=0.2
    )

    task = await finish_within(drain(client.create_stream(conversation())), 5)

    assert isinstance(task.exception(), TimeoutError)


class QuotaExceeded(Exception):
    """An error type of the user's own provider, which AutoGen code catches and retries."""


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({}, "create"),
        ({"ensemble": "jekyll_hyde"}, "create"),
        ({}, "stream"),
        ({"ensemble": "jekyll_hyde"}, "stream"),
        ({}, "tools"),
    ],
    ids=["persona-create", "jh-create", "persona-stream", "jh-stream", "tools"],
)
async def test_the_inner_clients_own_exception_reaches_the_caller_unchanged(overrides, path):
    error = QuotaExceeded("quota exceeded for this key")
    inner = RecordingClient(error=error, model_info=WITH_TOOLS_AND_VISION)
    client = PersonaChatCompletionClient(inner, persona="pirate_captain", **overrides)
    tool = FunctionTool(get_weather, description="The weather in a city.")

    with pytest.raises(QuotaExceeded) as raised:
        if path == "create":
            await client.create(conversation())
        elif path == "stream":
            await drain(client.create_stream(conversation()))
        else:
            await client.create(conversation(), tools=[tool])

    assert raised.value is error


# -- tracing ---------------------------------------------------------------------------------------


async def test_a_turn_through_the_client_is_traced_on_the_given_provider(memory_tracing):
    provider, exporter = memory_tracing
    inner = RecordingClient(usage=RequestUsage(prompt_tokens=12, completion_tokens=5))
    client = PersonaChatCompletionClient(inner, persona="pirate_captain", tracer_provider=provider)

    await client.create(conversation())

    spans = {s.name: s for s in exporter.get_finished_spans()}
    turn = spans[semconv.SPAN_TURN]
    chat = next(s for name, s in spans.items() if name.startswith("chat "))
    assert turn.attributes[semconv.PP_PERSONA_NAME] == "pirate_captain"
    assert turn.attributes[semconv.PP_MODEL_CALLS] == 1
    assert chat.context.trace_id == turn.context.trace_id
    assert chat.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 5


async def test_a_streamed_turn_traces_its_model_call_with_usage(memory_tracing):
    provider, exporter = memory_tracing
    inner = RecordingClient(usage=RequestUsage(prompt_tokens=12, completion_tokens=5))
    client = PersonaChatCompletionClient(inner, persona="pirate_captain", tracer_provider=provider)

    await drain(client.create_stream(conversation()))

    chats = [s for s in exporter.get_finished_spans() if s.name.startswith("chat ")]
    assert len(chats) == 1
    assert chats[0].attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 5


# -- serialization -------------------------------------------------------------------------------


async def test_dump_and_load_component_keep_the_persona_the_config_and_the_inner_client():
    inner = ReplayChatCompletionClient([REPLY, REPLY])
    inner.set_cached_bool_value(False)
    client = PersonaChatCompletionClient(
        inner, persona="pirate_captain", ensemble="jekyll_hyde", model_settings={"max_tokens": 48}
    )

    config = client.dump_component()
    loaded = ChatCompletionClient.load_component(config)

    assert config.provider == "persona_plugins.adapters.autogen.PersonaChatCompletionClient"
    assert config.component_type == "model"
    assert isinstance(loaded, PersonaChatCompletionClient)
    assert loaded.pipeline.config.persona == client.pipeline.config.persona
    assert loaded.pipeline.config.ensemble == "jekyll_hyde"
    assert loaded.pipeline.config.model_settings == {"max_tokens": 48}
    assert isinstance(loaded.inner, ReplayChatCompletionClient)
    assert loaded.inner.chat_completions == [REPLY, REPLY]
    result = await loaded.create(conversation())
    assert result.content == REPLY
    assert loaded.model_calls == 2


async def test_a_component_survives_a_json_round_trip():
    persona = Persona(
        name="grumpy_librarian",
        description="a grumpy librarian who has read every book twice",
        traits=["terse", "precise"],
        style="Short sentences.",
        statements=["I work at the city library."],
        demographics={"age": "70"},
        metadata={"source": "test"},
    )
    client = PersonaChatCompletionClient(
        ReplayChatCompletionClient([REPLY]), persona=persona, persona_template="roleplay"
    )

    text = client.dump_component().model_dump_json()
    loaded = ChatCompletionClient.load_component(json.loads(text))

    assert isinstance(loaded, PersonaChatCompletionClient)
    assert loaded.pipeline.config.persona == persona
    assert loaded.pipeline.config.persona_template == "roleplay"
    assert persona_prompt(loaded) == persona_prompt(client)


def test_a_client_around_the_embedded_model_round_trips_its_model_settings():
    model = LlamaCppChatModel(n_ctx=1024, generation={"max_tokens": 48})
    client = PersonaChatCompletionClient(ChatModelCompletionClient(model), persona="historian")

    text = client.dump_component().model_dump_json()
    loaded = ChatCompletionClient.load_component(json.loads(text))

    assert isinstance(loaded, PersonaChatCompletionClient)
    assert isinstance(loaded.inner, ChatModelCompletionClient)
    assert isinstance(loaded.inner.model, LlamaCppChatModel)
    assert loaded.inner.model.model_path == model.model_path
    assert loaded.inner.model.n_ctx == 1024
    assert loaded.inner.model.generation == model.generation
    assert loaded.inner.model_info == client.inner.model_info
    assert loaded.pipeline.config.persona.name == "historian"


@pytest.mark.model
async def test_a_loaded_embedded_client_answers():
    client = PersonaChatCompletionClient(
        ChatModelCompletionClient(LlamaCppChatModel(generation={"max_tokens": 16})),
        persona="pirate_captain",
    )
    loaded = ChatCompletionClient.load_component(
        json.loads(client.dump_component().model_dump_json())
    )

    result = await loaded.create(conversation())

    assert isinstance(result.content, str) and result.content.strip()
    assert 0 < result.usage.completion_tokens <= 16


def test_a_client_around_an_openai_compatible_model_round_trips_its_generation_settings():
    model = OpenAICompatibleChatModel(
        "http://127.0.0.1:8000/v1", model="smollm2", timeout_s=5, generation={"max_tokens": 48}
    )
    inner = ChatModelCompletionClient(model)

    loaded = ChatCompletionClient.load_component(
        json.loads(inner.dump_component().model_dump_json())
    )

    assert loaded.model.base_url == "http://127.0.0.1:8000/v1"
    assert loaded.model.model_name == "smollm2"
    assert loaded.model.generation == {"max_tokens": 48}
    assert loaded.model.timeout_s == 5


def test_a_client_around_a_model_without_a_config_form_says_it_cannot_be_dumped():
    client = PersonaChatCompletionClient(ChatModelCompletionClient(EchoModel()))

    with pytest.raises(TypeError, match="EchoModel"):
        client.dump_component()


# -- everything else delegates -------------------------------------------------------------------


async def test_token_counts_model_info_and_close_delegate_to_the_inner_client():
    inner = RecordingClient(model_info=SINGLE_SYSTEM_MESSAGE, token_cost=10, context_window=1000)
    client = PersonaChatCompletionClient(inner, persona="pirate_captain")
    messages = conversation()

    assert client.count_tokens(messages) == inner.count_tokens(messages) == 20
    assert client.remaining_tokens(messages) == inner.remaining_tokens(messages) == 980
    assert client.model_info is inner.model_info
    assert client.model_info["multiple_system_messages"] is False

    await client.close()
    assert inner.closed is True


async def test_token_counts_include_the_persona_so_a_token_limited_context_leaves_room(
    embedded_model,
):
    inner = ChatModelCompletionClient(embedded_model)
    client = PersonaChatCompletionClient(inner, persona="pirate_captain")
    history = [
        UserMessage(content="Tell me about the sea. " * 20, source="user"),
        AssistantMessage(content="The sea is wide and deep. " * 20, source="captain"),
        UserMessage(content="And the treasure? " * 20, source="user"),
    ]
    as_sent = [SystemMessage(content=persona_prompt(client)), *history]

    assert client.count_tokens(history) == inner.count_tokens(as_sent)
    assert client.count_tokens(history) > inner.count_tokens(history)
    assert client.remaining_tokens(history) == inner.remaining_tokens(as_sent)

    limit = inner.count_tokens(history)  # room for the history alone, not for the persona too
    context = TokenLimitedChatCompletionContext(client, token_limit=limit)
    for message in history:
        await context.add_message(message)
    kept = await context.get_messages()

    assert len(kept) < len(history)
    assert client.count_tokens(kept) <= limit


async def test_token_counts_follow_the_persona_text_the_latest_turn_wrote():
    inner = RecordingClient(token_cost=10)
    client = PersonaChatCompletionClient(inner, persona="pirate_captain")

    assert client.count_tokens(conversation()) == 30, "persona, agent system message, question"
    await client.create(conversation())
    assert client.last_result.system_prompt == persona_prompt(client)
    assert client.count_tokens(conversation()) == 30
    assert PersonaChatCompletionClient(inner).count_tokens(conversation()) == 20


def test_a_fresh_client_reports_zero_usage():
    client = PersonaChatCompletionClient(RecordingClient(), persona="pirate_captain")

    assert client.total_usage() == RequestUsage(prompt_tokens=0, completion_tokens=0)
    assert client.actual_usage() == RequestUsage(prompt_tokens=0, completion_tokens=0)
    assert client.model_calls == 0
    assert client.last_result is None


@pytest.mark.parametrize("inner", [EchoModel(), "gpt-4o", None], ids=["chat-model", "str", "none"])
def test_an_inner_that_is_not_an_autogen_client_is_a_type_error(inner):
    with pytest.raises(TypeError, match="ChatCompletionClient") as raised:
        PersonaChatCompletionClient(inner)  # type: ignore[arg-type]

    if isinstance(inner, EchoModel):
        assert "ChatModelCompletionClient" in str(raised.value)


async def test_a_stream_never_leaves_its_spans_current_while_the_caller_holds_a_chunk(
    memory_tracing,
):
    provider, exporter = memory_tracing
    user_tracer = provider.get_tracer("the-user")
    inner = RecordingClient(("one two three four five",))
    client = PersonaChatCompletionClient(inner, persona="pirate_captain", tracer_provider=provider)

    async for _ in client.create_stream(conversation()):
        with user_tracer.start_as_current_span("user-work"):
            pass

    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert spans["user-work"].parent is None  # not a child of the library's spans
    turn = spans[semconv.SPAN_TURN]
    chat = next(s for name, s in spans.items() if name.startswith("chat "))
    assert chat.parent.span_id == turn.context.span_id
    assert spans["persona_plugins prepare"].parent.span_id == turn.context.span_id
    assert turn.attributes[semconv.PP_PERSONA_NAME] == "pirate_captain"
    assert chat.attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] == 5
