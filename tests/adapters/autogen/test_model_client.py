"""The conversions between AutoGen clients and persona-plugins chat models.

``ChatModelCompletionClient`` lets AutoGen agents run on any persona-plugins ``ChatModel`` (the
embedded SmolLM2 above all); ``AutoGenChatModel`` lets the pipeline call any AutoGen client.
"""

from __future__ import annotations

import asyncio
import json

import PIL.Image
import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_core import CancellationToken, FunctionCall, Image
from autogen_core.models import (
    AssistantMessage,
    CreateResult,
    FunctionExecutionResult,
    FunctionExecutionResultMessage,
    RequestUsage,
    SystemMessage,
    UserMessage,
)
from autogen_core.tools import FunctionTool
from autogen_ext.models.replay import ReplayChatCompletionClient

from persona_plugins import Completion, Message
from persona_plugins.adapters.autogen import (
    AutoGenChatModel,
    ChatModelCompletionClient,
    from_core_messages,
    to_core_messages,
)
from persona_plugins.adapters.autogen._model import finish_reason
from persona_plugins.integrations.llama_cpp import LlamaCppChatModel

from .doubles import SINGLE_SYSTEM_MESSAGE, EchoModel, RecordingClient, StallingModel


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"18 C and sunny in {city}"


QUESTION = [
    SystemMessage(content="Answer in one short sentence."),
    UserMessage(content="What colour is the sky on a clear day?", source="user"),
]


# -- ChatModelCompletionClient: AutoGen agents on the embedded model -----------------------------


@pytest.mark.model
async def test_the_embedded_model_answers_as_an_autogen_client(embedded_model):
    client = ChatModelCompletionClient(embedded_model)

    result = await client.create(QUESTION, extra_create_args={"max_tokens": 24})

    assert isinstance(result, CreateResult)
    assert isinstance(result.content, str) and result.content.strip()
    assert result.usage.prompt_tokens > 0
    assert 0 < result.usage.completion_tokens <= 24
    assert result.finish_reason in {"stop", "length"}
    assert result.cached is False
    assert client.total_usage() == result.usage


@pytest.mark.model
async def test_the_embedded_client_streams_its_answer_then_one_result(embedded_model):
    client = ChatModelCompletionClient(embedded_model)

    chunks = [c async for c in client.create_stream(QUESTION, extra_create_args={"max_tokens": 16})]

    *texts, last = chunks
    assert isinstance(last, CreateResult)
    assert texts and all(isinstance(t, str) for t in texts)
    assert "".join(texts) == last.content


async def test_tools_are_refused_with_a_clear_error():
    client = ChatModelCompletionClient(LlamaCppChatModel())
    tool = FunctionTool(get_weather, description="The weather in a city.")

    with pytest.raises(ValueError, match="no tool calling"):
        await client.create(QUESTION, tools=[tool])
    with pytest.raises(ValueError, match="LlamaCppChatModel has no tool calling"):
        [c async for c in client.create_stream(QUESTION, tools=[tool])]


def test_an_assistant_agent_with_tools_is_refused_by_autogen_itself():
    client = ChatModelCompletionClient(LlamaCppChatModel())
    tool = FunctionTool(get_weather, description="The weather in a city.")

    assert client.model_info["function_calling"] is False
    with pytest.raises(ValueError, match="function calling"):
        AssistantAgent("helper", model_client=client, tools=[tool])


@pytest.mark.parametrize("kind", ["image", "function-calls"])
async def test_images_and_function_call_history_are_refused_with_a_clear_error(kind):
    client = ChatModelCompletionClient(LlamaCppChatModel())
    if kind == "image":
        picture = Image.from_pil(PIL.Image.new("RGB", (4, 4)))
        messages = [UserMessage(content=["What is this?", picture], source="user")]
    else:
        messages = [
            UserMessage(content="Weather in Paris?", source="user"),
            AssistantMessage(
                content=[FunctionCall(id="1", name="get_weather", arguments="{}")], source="a"
            ),
            FunctionExecutionResultMessage(
                content=[FunctionExecutionResult(content="sunny", name="get_weather", call_id="1")]
            ),
        ]

    with pytest.raises(ValueError, match="text only"):
        await client.create(messages)


def test_the_default_model_info_describes_a_text_only_model():
    model = LlamaCppChatModel()
    client = ChatModelCompletionClient(model)

    info = client.model_info
    assert info["function_calling"] is False
    assert info["vision"] is False
    assert info["json_output"] is False
    assert info["structured_output"] is False
    assert info["family"] == model.model_name
    assert info["multiple_system_messages"] is True


def test_token_counts_are_estimated_within_the_models_context_window():
    client = ChatModelCompletionClient(LlamaCppChatModel(n_ctx=1024))
    text = "word " * 100

    used = client.count_tokens([UserMessage(content=text, source="user")])

    assert 0 < used < len(text)
    assert client.remaining_tokens([UserMessage(content=text, source="user")]) == 1024 - used
    assert client.count_tokens([]) == 0


async def test_cancelling_the_token_cancels_a_stalled_call():
    model = StallingModel()
    client = ChatModelCompletionClient(model)
    token = CancellationToken()
    task = asyncio.ensure_future(client.create(QUESTION, cancellation_token=token))

    await asyncio.wait_for(model.started.wait(), timeout=30)
    token.cancel()
    done, _ = await asyncio.wait({task}, timeout=30)

    assert task in done
    assert task.cancelled()


def test_an_object_without_complete_is_not_a_chat_model():
    with pytest.raises(TypeError, match="ChatModel"):
        ChatModelCompletionClient(object())  # type: ignore[arg-type]


async def test_close_closes_the_model_when_it_can_be_closed():
    class ClosableEcho(EchoModel):
        closed = False

        async def close(self) -> None:
            self.closed = True

    model = ClosableEcho()
    await ChatModelCompletionClient(model).close()
    await ChatModelCompletionClient(EchoModel()).close()  # nothing to close: no error

    assert model.closed is True


# -- AutoGenChatModel: the pipeline calling any AutoGen client ------------------------------------


async def test_an_autogen_client_answers_as_a_chat_model():
    client = ReplayChatCompletionClient(["Blue."])
    client.set_cached_bool_value(False)
    model = AutoGenChatModel(client)

    completion = await model.complete([Message.user("What colour is the sky?")], max_tokens=12)

    assert isinstance(completion, Completion)
    assert completion.text == "Blue."
    assert completion.usage.input_tokens == 5
    assert completion.usage.output_tokens == 1
    assert completion.finish_reason == "stop"
    [call] = client.create_calls
    assert call["extra_create_args"] == {"max_tokens": 12}
    assert isinstance(call["messages"][0], UserMessage)


async def test_a_function_call_answer_becomes_json_text():
    calls = [FunctionCall(id="1", name="get_weather", arguments='{"city": "Paris"}')]
    client = RecordingClient(
        [
            CreateResult(
                finish_reason="function_calls",
                content=calls,
                usage=RequestUsage(3, 2),
                cached=False,
            )
        ]
    )

    completion = await AutoGenChatModel(client).complete([Message.user("Weather?")])

    assert json.loads(completion.text) == [
        {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    ]
    assert completion.finish_reason == "function_calls"


async def test_a_cancelled_token_stops_the_call_before_the_client_is_asked():
    client = RecordingClient()
    token = CancellationToken()
    token.cancel()

    with pytest.raises(asyncio.CancelledError):
        await AutoGenChatModel(client, cancellation_token=token).complete([Message.user("Hi")])
    assert client.calls == []


def test_the_model_reports_whether_the_client_takes_several_system_messages():
    assert AutoGenChatModel(RecordingClient()).supports_multiple_system_messages is True
    single = RecordingClient(model_info=SINGLE_SYSTEM_MESSAGE)
    assert AutoGenChatModel(single).supports_multiple_system_messages is False


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, "stop"),
        ("stop", "stop"),
        ("length", "length"),
        ("tool_calls", "function_calls"),
        ("eos", "unknown"),
    ],
)
def test_finish_reasons_map_onto_autogens_fixed_set(given, expected):
    assert finish_reason(given) == expected


def test_messages_translate_to_core_messages_and_back_as_the_same_objects():
    picture = Image.from_pil(PIL.Image.new("RGB", (2, 2)))
    messages = [
        SystemMessage(content="Be brief."),
        UserMessage(content="Hello", source="alice"),
        AssistantMessage(content="Hi Alice.", source="helper"),
        UserMessage(content=["And this?", picture], source="alice"),
    ]

    translation = to_core_messages(messages)

    assert [m.role for m in translation.messages] == ["system", "user", "assistant", "user"]
    assert translation.messages[1].name == "alice"
    assert translation.text_only is False
    back = translation.back(translation.messages)
    assert all(a is b for a, b in zip(back, messages, strict=True))
    fresh = from_core_messages([Message.system("New."), Message.user("Q", name="bob")])
    assert fresh == [SystemMessage(content="New."), UserMessage(content="Q", source="bob")]
