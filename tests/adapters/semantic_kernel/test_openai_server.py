"""SK's own ``OpenAIChatCompletion`` connector, pointed at a real ``llama_cpp.server`` on loopback,
wrapped in ``PersonaChatCompletion`` and driven by a real kernel and ``ChatCompletionAgent``."""

from __future__ import annotations

from typing import Any

import pytest
from openai import AsyncOpenAI
from pydantic import Field
from semantic_kernel import Kernel
from semantic_kernel.agents import ChatCompletionAgent
from semantic_kernel.connectors.ai.completion_usage import CompletionUsage
from semantic_kernel.connectors.ai.open_ai import (
    OpenAIChatCompletion,
    OpenAIChatPromptExecutionSettings,
)
from semantic_kernel.contents import ChatHistory
from semantic_kernel.functions import KernelArguments, kernel_function

from persona_plugins.adapters.semantic_kernel import PersonaChatCompletion, PersonaPlugin
from persona_plugins.injection import render_persona

from .doubles import texts

pytestmark = pytest.mark.server

MAX_TOKENS = 48


class RecordingOpenAIChatCompletion(OpenAIChatCompletion):
    """The real OpenAI connector, also keeping the history and settings of every call."""

    received: list[dict[str, Any]] = Field(default_factory=list, exclude=True)

    async def get_chat_message_contents(self, chat_history: ChatHistory, settings, **kwargs):
        self.received.append(
            {"kind": "call", "messages": list(chat_history.messages), "settings": settings}
        )
        return await super().get_chat_message_contents(chat_history, settings, **kwargs)

    async def get_streaming_chat_message_contents(  # type: ignore[override]
        self, chat_history: ChatHistory, settings, **kwargs
    ):
        self.received.append(
            {"kind": "stream", "messages": list(chat_history.messages), "settings": settings}
        )
        async for batch in super().get_streaming_chat_message_contents(
            chat_history, settings, **kwargs
        ):
            yield batch


def openai_service(base_url: str) -> RecordingOpenAIChatCompletion:
    return RecordingOpenAIChatCompletion(
        ai_model_id="smollm2", async_client=AsyncOpenAI(base_url=base_url, api_key="none")
    )


def bounded() -> KernelArguments:
    return KernelArguments(
        settings=OpenAIChatPromptExecutionSettings(max_tokens=MAX_TOKENS, temperature=0.0)
    )


def persona_prompt(pipeline) -> str:
    return render_persona(pipeline.config.persona, pipeline.config.persona_template)


async def test_an_agent_answers_through_the_wrapped_openai_connector(llama_server):
    inner = openai_service(llama_server)
    service = PersonaChatCompletion(inner, persona="pirate_captain")
    agent = ChatCompletionAgent(
        service=service, name="captain", instructions="Answer in one sentence.", arguments=bounded()
    )

    response = await agent.get_response("Where do pirates keep their treasure?")

    assert response.message.content.strip() and response.message.name == "captain"
    assert texts(inner.received[0]["messages"]) == [
        ("system", persona_prompt(service.pipeline)),
        ("system", "Answer in one sentence."),
        ("user", "Where do pirates keep their treasure?"),
    ]
    assert isinstance(inner.received[0]["settings"], OpenAIChatPromptExecutionSettings)
    usage = response.message.metadata["usage"]
    assert isinstance(usage, CompletionUsage) and 0 < usage.completion_tokens <= MAX_TOKENS
    assert service.usage.output_tokens == usage.completion_tokens and service.model_calls == 1


async def test_the_connector_stream_passes_straight_through(llama_server):
    inner = openai_service(llama_server)
    service = PersonaChatCompletion(inner, persona="pirate_captain")
    agent = ChatCompletionAgent(service=service, name="captain", arguments=bounded())

    chunks = [item.message async for item in agent.invoke_stream("Where is the treasure?")]

    assert [call["kind"] for call in inner.received] == ["stream"]
    assert texts(inner.received[0]["messages"])[0] == ("system", persona_prompt(service.pipeline))
    assert len(chunks) > 1, "the server's own token stream, not one block"
    assert "".join(c.content for c in chunks).strip()


async def test_an_ensemble_runs_on_the_server(llama_server):
    inner = openai_service(llama_server)
    service = PersonaChatCompletion(
        inner, persona="math_teacher", ensemble="jekyll_hyde", model_settings={"max_tokens": 32}
    )
    agent = ChatCompletionAgent(service=service, name="teacher")

    response = await agent.get_response("What is 12 + 30?")

    turn = service.last_result
    assert response.message.content == turn.text
    assert {c.name for c in turn.candidates} >= {"persona", "neutral"}
    assert len(inner.received) == turn.model_calls
    # The candidates have the config's model_settings; the judge sets its own bound.
    assert [call["settings"].max_tokens for call in inner.received[:2]] == [32, 32]
    assert all(call["settings"].max_tokens for call in inner.received)


class Weather:
    @kernel_function(name="forecast", description="Get the weather forecast for a city.")
    def forecast(self, city: str) -> str:
        return f"Sunny in {city}."


async def test_an_agent_with_functions_sends_its_tools_through(llama_server):
    inner = openai_service(llama_server)
    service = PersonaChatCompletion(inner, persona="pirate_captain", ensemble="jekyll_hyde")
    kernel = Kernel()
    kernel.add_plugin(Weather(), "weather")
    agent = ChatCompletionAgent(service=service, name="captain", kernel=kernel, arguments=bounded())

    response = await agent.get_response("What is the weather in Paris?")

    assert response.message.content.strip()
    turn = service.last_result  # no pipeline turn: the function-calling call passed through
    assert turn.text == response.message.content and turn.persona.name == "pirate_captain"
    assert [c.name for c in turn.candidates] == ["persona"], "no ensemble with functions"
    assert len(inner.received) >= 1
    assert inner.received[0]["settings"].function_choice_behavior is not None
    assert texts(inner.received[0]["messages"])[0] == ("system", persona_prompt(service.pipeline))


async def test_the_plugin_runs_on_the_connector(llama_server):
    inner = openai_service(llama_server)
    kernel = Kernel()
    kernel.add_service(inner)
    plugin = PersonaPlugin(persona="historian", model_settings={"max_tokens": MAX_TOKENS})
    kernel.add_plugin(plugin, "persona")

    answer = await kernel.invoke(
        plugin_name="persona", function_name="answer", question="Who was Erasmus?"
    )
    prompt = await kernel.invoke_prompt("Name one castle.", arguments=bounded())

    assert str(answer) == plugin.last_result.text and str(answer).strip()
    assert texts(inner.received[0]["messages"])[0] == ("system", persona_prompt(plugin.pipeline))
    assert texts(inner.received[1]["messages"]) == [
        ("system", persona_prompt(plugin.pipeline)),
        ("user", "Name one castle."),
    ]
    assert str(prompt).strip()
