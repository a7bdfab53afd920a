"""``PersonaChatCompletion`` around the embedded-model service, driven by a real
``ChatCompletionAgent``: plain and streaming calls, settings, usage, function-calling turns.

SmolLM2-135M is weak, so these tests check structure (which persona reached the model, which
messages, how many calls), never the quality of an answer.
"""

from __future__ import annotations

import asyncio

import pytest
from semantic_kernel import Kernel
from semantic_kernel.agents import ChatCompletionAgent, ChatHistoryAgentThread
from semantic_kernel.connectors.ai.completion_usage import CompletionUsage
from semantic_kernel.connectors.ai.function_choice_behavior import FunctionChoiceBehavior
from semantic_kernel.connectors.ai.prompt_execution_settings import PromptExecutionSettings
from semantic_kernel.contents import (
    ChatHistory,
    ChatMessageContent,
    FunctionCallContent,
    FunctionResultContent,
    ImageContent,
    StreamingChatMessageContent,
    TextContent,
)
from semantic_kernel.contents.utils.author_role import AuthorRole
from semantic_kernel.functions import KernelArguments, kernel_function

from persona_plugins.adapters.semantic_kernel import (
    ChatModelPromptExecutionSettings,
    PersonaChatCompletion,
)
from persona_plugins.injection import render_persona

from .doubles import FailingChatCompletion, FunctionCallingChatCompletion, texts

pytestmark = pytest.mark.model

QUESTION = "Why did people build castles?"


def persona_prompt(service: PersonaChatCompletion) -> str:
    config = service.pipeline.config
    return render_persona(config.persona, config.persona_template)


class Weather:
    def __init__(self) -> None:
        self.cities: list[str] = []

    @kernel_function(name="forecast", description="Get the weather forecast for a city.")
    def forecast(self, city: str) -> str:
        self.cities.append(city)
        return f"Sunny and 24 degrees in {city}."


def weather_kernel(weather: Weather) -> Kernel:
    kernel = Kernel()
    kernel.add_plugin(weather, "weather")
    return kernel


# -- the service as SK sees it ------------------------------------------------------------------


def test_it_is_a_chat_service_that_takes_the_inner_service_place(service):
    wrapped = PersonaChatCompletion(service, persona="historian")

    assert wrapped.ai_model_id == service.ai_model_id
    assert wrapped.service_id == service.service_id
    assert wrapped.get_prompt_execution_settings_class() is ChatModelPromptExecutionSettings
    settings = wrapped.instantiate_prompt_execution_settings(max_tokens=12)
    assert isinstance(settings, ChatModelPromptExecutionSettings) and settings.max_tokens == 12
    assert PersonaChatCompletion(service, service_id="other").service_id == "other"

    kernel = Kernel()
    kernel.add_service(wrapped)
    assert kernel.get_service(service.service_id) is wrapped


def test_only_a_semantic_kernel_service_can_be_wrapped(bounded_model):
    with pytest.raises(TypeError, match="ChatModelChatCompletion"):
        PersonaChatCompletion(bounded_model)  # type: ignore[arg-type]


# -- ChatCompletionAgent.get_response -----------------------------------------------------------


async def test_an_agent_answers_with_the_persona_ahead_of_its_instructions(service):
    wrapped = PersonaChatCompletion(service, persona="historian")
    agent = ChatCompletionAgent(
        service=wrapped, name="historian", instructions="Answer in one sentence."
    )

    response = await agent.get_response(QUESTION)

    sent = service.received[0]["messages"]
    assert texts(sent) == [
        ("system", persona_prompt(wrapped)),
        ("system", "Answer in one sentence."),
        ("user", QUESTION),
    ]
    assert response.message.content.strip() and response.message.name == "historian"
    usage = response.message.metadata["usage"]
    assert isinstance(usage, CompletionUsage) and usage.completion_tokens > 0
    assert wrapped.model_calls == 1 and wrapped.usage.output_tokens == usage.completion_tokens
    assert wrapped.last_prepared.persona.name == "historian"
    turn = wrapped.last_result  # persona injection only: the inner call passed through
    assert turn.text == response.message.content and turn.persona.name == "historian"
    assert turn.system_prompt == persona_prompt(wrapped) and turn.model_calls == 1
    assert "persona_plugins" not in response.message.metadata, "the message is the service's own"


async def test_the_conversation_reaches_the_inner_service_as_the_same_objects(service):
    wrapped = PersonaChatCompletion(service, persona="historian")
    history = ChatHistory()
    history.add_user_message(QUESTION)
    history.add_assistant_message("To defend the land.")
    history.add_user_message("And who lived in them?")

    await wrapped.get_chat_message_contents(history, PromptExecutionSettings())

    sent = service.received[0]["messages"]
    assert all(a is b for a, b in zip(sent[1:], history.messages, strict=True))
    assert len(history.messages) == 3, "the caller's history is not changed"


async def test_an_ensemble_agent_runs_the_whole_turn(service, recording_model):
    wrapped = PersonaChatCompletion(
        service, persona="math_teacher", ensemble="jekyll_hyde", model_settings={"max_tokens": 24}
    )
    agent = ChatCompletionAgent(service=wrapped, name="teacher")

    response = await agent.get_response("What is 12 + 30?")

    turn = wrapped.last_result
    assert response.message.content == turn.text
    assert {c.name for c in turn.candidates} >= {"persona", "neutral"}
    assert wrapped.model_calls == turn.model_calls == len(recording_model.calls)
    assert response.message.metadata["usage"].prompt_tokens == turn.usage.input_tokens
    assert response.message.metadata["persona_plugins"]["chosen"] == turn.chosen
    assert all(call["settings"]["max_tokens"] == 24 for call in recording_model.calls)


async def test_config_model_settings_apply_to_calls_passed_through(service, recording_model):
    wrapped = PersonaChatCompletion(service, persona="historian", model_settings={"max_tokens": 8})
    agent = ChatCompletionAgent(service=wrapped, name="historian")

    await agent.get_response(QUESTION)

    assert recording_model.calls[0]["settings"]["max_tokens"] == 8
    assert service.received[0]["settings"].max_tokens == 8


async def test_the_inner_service_error_reaches_the_agent_unchanged():
    error = ConnectionError("the model server is down")
    inner = FailingChatCompletion(ai_model_id="failing", error=error)

    for options in ({}, {"ensemble": "jekyll_hyde"}):
        agent = ChatCompletionAgent(
            service=PersonaChatCompletion(inner, persona="historian", **options), name="historian"
        )
        with pytest.raises(ConnectionError) as raised:
            await agent.get_response(QUESTION)
        assert raised.value is error


async def test_a_timeout_bounds_a_call_passed_through(service):
    class Stalling(FailingChatCompletion):
        async def get_chat_message_contents(self, chat_history, settings, **kwargs):
            await asyncio.sleep(30)

    wrapped = PersonaChatCompletion(
        Stalling(ai_model_id="stalling", error=RuntimeError()), persona="historian", timeout_s=0.2
    )
    history = ChatHistory()
    history.add_user_message(QUESTION)
    with pytest.raises(TimeoutError):
        await wrapped.get_chat_message_contents(history, PromptExecutionSettings())


# -- ChatCompletionAgent.invoke_stream ----------------------------------------------------------


async def test_with_injection_only_the_inner_stream_passes_straight_through(service):
    wrapped = PersonaChatCompletion(service, persona="pirate_captain")
    agent = ChatCompletionAgent(service=wrapped, name="captain")

    items = [item async for item in agent.invoke_stream("Where is the treasure?")]

    assert [r["kind"] for r in service.received] == ["stream"]
    assert texts(service.received[0]["messages"])[0] == ("system", persona_prompt(wrapped))
    chunks = [item.message for item in items]
    assert all(isinstance(c, StreamingChatMessageContent) for c in chunks)
    assert "".join(c.content for c in chunks).strip()
    assert wrapped.model_calls == 1 and wrapped.usage.output_tokens > 0
    thread = items[-1].thread
    stored = [m async for m in thread.get_messages()]
    assert [m.role for m in stored] == [AuthorRole.USER, AuthorRole.ASSISTANT]
    assert stored[-1].content == "".join(c.content for c in chunks)


async def test_with_an_ensemble_the_turn_runs_then_its_text_is_streamed(service):
    wrapped = PersonaChatCompletion(
        service, persona="math_teacher", ensemble="jekyll_hyde", model_settings={"max_tokens": 24}
    )
    agent = ChatCompletionAgent(service=wrapped, name="teacher")

    chunks = [item.message async for item in agent.invoke_stream("What is 12 + 30?")]

    turn = wrapped.last_result
    assert {c.name for c in turn.candidates} >= {"persona", "neutral"}
    assert "".join(c.content for c in chunks) == turn.text
    assert len(chunks) > 1 or len(turn.text.split()) <= 1
    assert chunks[-1].metadata["usage"].completion_tokens == turn.usage.output_tokens
    assert all("usage" not in c.metadata for c in chunks[:-1])
    summed = sum(chunks[1:], chunks[0])  # what the orchestrations do with the chunks
    assert summed.content == turn.text


# -- function calling passes through ------------------------------------------------------------


async def test_a_function_calling_turn_reaches_the_inner_service_with_the_persona(
    recording_model,
):
    inner = FunctionCallingChatCompletion(recording_model, function="weather-forecast")
    wrapped = PersonaChatCompletion(inner, persona="pirate_captain", ensemble="jekyll_hyde")
    weather = Weather()
    agent = ChatCompletionAgent(service=wrapped, name="captain", kernel=weather_kernel(weather))
    intermediate: list[ChatMessageContent] = []

    async def on_intermediate(message: ChatMessageContent) -> None:
        intermediate.append(message)

    items = [
        item
        async for item in agent.invoke(
            "What is the weather in Paris?", on_intermediate_message=on_intermediate
        )
    ]

    assert weather.cities == ["Paris"], "SK's auto-invocation loop called the function"
    turn = wrapped.last_result  # no pipeline turn: the call passed through, and is described
    assert turn.persona.name == "pirate_captain" and turn.model_calls == 2
    assert turn.candidates[0].metadata["tool_calls"] == [
        {"id": "call_1", "name": "weather-forecast", "arguments": {"city": "Paris"}}
    ]
    assert turn.text == items[-1].message.content
    assert [c.name for c in turn.candidates] == ["persona"], (
        "no ensemble on a function-calling turn"
    )
    assert len(inner.received) == 2
    for call in inner.received:
        assert texts(call["messages"])[0] == ("system", persona_prompt(wrapped))
    second = inner.received[1]["messages"]
    assert any(isinstance(i, FunctionCallContent) for m in second for i in m.items)
    assert any(isinstance(i, FunctionResultContent) for m in second for i in m.items)
    kinds = [type(m.items[0]).__name__ for m in intermediate]
    assert kinds == ["FunctionCallContent", "FunctionResultContent"]
    assert items[-1].message.content.strip()
    stored = [m async for m in items[-1].thread.get_messages()]
    assert [m.role for m in stored] == [
        AuthorRole.USER,
        AuthorRole.ASSISTANT,
        AuthorRole.TOOL,
        AuthorRole.ASSISTANT,
    ]
    assert wrapped.model_calls == 2


async def test_a_streamed_function_calling_turn_hands_its_messages_to_the_agent(
    recording_model,
):
    inner = FunctionCallingChatCompletion(recording_model, function="weather-forecast")
    wrapped = PersonaChatCompletion(inner, persona="pirate_captain")
    weather = Weather()
    agent = ChatCompletionAgent(service=wrapped, name="captain", kernel=weather_kernel(weather))
    intermediate: list[ChatMessageContent] = []

    async def on_intermediate(message: ChatMessageContent) -> None:
        intermediate.append(message)

    thread = ChatHistoryAgentThread()
    chunks = [
        item.message
        async for item in agent.invoke_stream(
            "What is the weather in Paris?", thread=thread, on_intermediate_message=on_intermediate
        )
    ]

    assert weather.cities == ["Paris"]
    assert [r["kind"] for r in inner.received] == ["stream", "stream"]
    assert all(
        texts(r["messages"])[0] == ("system", persona_prompt(wrapped)) for r in inner.received
    )
    kinds = [type(m.items[0]).__name__ for m in intermediate]
    assert kinds == ["FunctionCallContent", "FunctionResultContent"]
    assert "".join(c.content for c in chunks).strip()
    assert wrapped.model_calls == 2
    turn = wrapped.last_result
    assert turn.model_calls == 2 and turn.text == "".join(c.content for c in chunks)
    assert [c["name"] for c in turn.candidates[0].metadata["tool_calls"]] == ["weather-forecast"]


async def test_without_kernel_functions_an_agent_turn_runs_the_pipeline(recording_model):
    inner = FunctionCallingChatCompletion(recording_model)
    wrapped = PersonaChatCompletion(inner, persona="historian", ensemble="jekyll_hyde")
    agent = ChatCompletionAgent(service=wrapped, name="historian")  # FunctionChoiceBehavior.Auto

    await agent.get_response(QUESTION)

    assert wrapped.last_result is not None, "an agent with no plugins has nothing to call"


async def test_a_history_with_an_image_passes_through_with_the_persona(service, recording_model):
    wrapped = PersonaChatCompletion(service, persona="historian", ensemble="jekyll_hyde")
    history = ChatHistory()
    history.add_message(
        ChatMessageContent(
            role=AuthorRole.USER,
            items=[
                TextContent(text="What is in this picture?"),
                ImageContent(uri="https://example.invalid/castle.png"),
            ],
        )
    )

    with pytest.raises(ValueError, match="text only"):
        # The embedded model reads no images: the call reached it, untouched but for the persona.
        await wrapped.get_chat_message_contents(history, PromptExecutionSettings())

    sent = service.received[0]["messages"]
    assert texts(sent)[0] == ("system", persona_prompt(wrapped)) and sent[1] is history.messages[0]
    assert wrapped.last_result is None, "the call failed: there is no turn to describe"


async def test_function_choice_settings_reach_the_inner_service(recording_model):
    inner = FunctionCallingChatCompletion(recording_model, function="weather-forecast")
    wrapped = PersonaChatCompletion(inner, persona="pirate_captain")
    kernel = Kernel()
    kernel.add_service(wrapped)
    weather = Weather()
    kernel.add_plugin(weather, "weather")
    settings = wrapped.instantiate_prompt_execution_settings(
        function_choice_behavior=FunctionChoiceBehavior.Auto()
    )

    result = await kernel.invoke_prompt(
        "What is the weather in Paris?", arguments=KernelArguments(settings=settings)
    )

    assert weather.cities == ["Paris"] and str(result).strip()
