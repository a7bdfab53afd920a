"""The chat client backed by any persona-plugins model (``ChatModelChatClient``, the embedded
client), and the other way round: any Agent Framework client as a ChatModel."""

from __future__ import annotations

import pytest
from agent_framework import Agent, chat_middleware, tool

from persona_plugins import PersonaPipeline, Usage
from persona_plugins.adapters.agent_framework import (
    AgentFrameworkChatModel,
    ChatModelChatClient,
    PersonaMiddleware,
)
from persona_plugins.injection import render_persona
from tests.core.doubles import CALL_USAGE, ScriptedModel

from .doubles import RecordingClient

INSTRUCTIONS = "Answer in one short sentence."


def prompt_of(middleware: PersonaMiddleware) -> str:
    config = middleware.pipeline.config
    return render_persona(config.persona, config.persona_template)


# -- ChatModelChatClient -------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["run", "stream"])
async def test_an_agent_runs_on_a_chat_model_with_the_persona_then_the_instructions(stream):
    model = ScriptedModel("Arr, the sea be salty from the rocks.")
    client = ChatModelChatClient(model)
    middleware = PersonaMiddleware(persona="pirate_captain")
    agent = Agent(client=client, instructions=INSTRUCTIONS, middleware=[middleware])

    if stream:
        updates = agent.run("Why is the sea salty?", stream=True)
        chunks = [u.text async for u in updates]
        response = await updates.get_final_response()
        assert "".join(chunks) == response.text
    else:
        response = await agent.run("Why is the sea salty?")

    assert response.text == "Arr, the sea be salty from the rocks."
    (sent,) = model.calls
    assert [(m.role, m.content) for m in sent] == [
        ("system", f"{prompt_of(middleware)}\n{INSTRUCTIONS}"),
        ("user", "Why is the sea salty?"),
    ]
    assert response.usage_details["input_token_count"] == CALL_USAGE.input_tokens
    assert middleware.last_result.usage == CALL_USAGE


def test_the_client_reports_the_model_name_as_its_model_and_keeps_the_model_apart():
    model = ScriptedModel()
    client = ChatModelChatClient(model)

    assert client.model == "scripted", "Agent reads client.model as the model id"
    assert client.chat_model is model


async def test_generation_options_become_the_models_settings():
    model = ScriptedModel("Salt.")
    agent = Agent(client=ChatModelChatClient(model), default_options={"max_tokens": 12})

    await agent.run("Why is the sea salty?", options={"temperature": 0.0})

    assert model.settings == [{"max_tokens": 12, "temperature": 0.0}]


async def test_tools_on_a_model_without_tool_calling_are_refused_clearly():
    @tool
    def depth(sea: str) -> str:
        """How deep a sea is."""
        return "deep"

    agent = Agent(client=ChatModelChatClient(ScriptedModel()), tools=[depth])

    with pytest.raises(ValueError, match="ScriptedModel has no tool calling"):
        await agent.run("How deep is the Baltic?")


def test_a_client_needs_a_chat_model():
    with pytest.raises(TypeError, match="must be a persona-plugins ChatModel"):
        ChatModelChatClient("gpt-4o")  # type: ignore[arg-type]


# -- AgentFrameworkChatModel ---------------------------------------------------------------------


async def test_a_pipeline_runs_on_an_agent_framework_client():
    outer = []

    @chat_middleware
    async def counting(context, call_next):
        outer.append(context)
        await call_next()

    client = RecordingClient(["The answer is 42."], middleware=[counting])
    model = AgentFrameworkChatModel(client)
    pipeline = PersonaPipeline(model, persona="math_teacher", model_settings={"max_tokens": 9})

    result = await pipeline.run("What is 6 * 7?")

    assert result.text == "The answer is 42."
    (call,) = client.calls
    assert call.system == [
        render_persona(pipeline.config.persona, pipeline.config.persona_template)
    ]
    assert call.options["max_tokens"] == 9
    assert result.usage == Usage(input_tokens=12, output_tokens=5)
    assert outer == [], "the call goes beneath the client's middleware, tool loop and telemetry"
    assert model.model_name == "recording"


def test_the_reverse_model_needs_a_chat_client():
    with pytest.raises(TypeError, match="must be an Agent Framework chat client"):
        AgentFrameworkChatModel(ScriptedModel())


# -- the embedded model --------------------------------------------------------------------------


@pytest.mark.model
async def test_an_agent_on_the_embedded_model_answers_in_persona_end_to_end(embedded_model):
    client = ChatModelChatClient(embedded_model)
    middleware = PersonaMiddleware(persona="pirate_captain", model_settings={"max_tokens": 24})
    agent = Agent(client=client, name="captain", middleware=[middleware])

    response = await agent.run("Say hello.")
    updates = agent.run("Say goodbye.", stream=True)
    streamed = "".join([u.text async for u in updates])

    assert response.text.strip()
    assert streamed.strip() and streamed == (await updates.get_final_response()).text
    turn = middleware.last_result
    assert turn.persona.name == "pirate_captain" and turn.text == streamed
    assert 0 < turn.usage.output_tokens <= 24
    assert middleware.model_calls == 2


@pytest.mark.model
async def test_jekyll_hyde_on_the_embedded_client(embedded_model):
    client = ChatModelChatClient(embedded_model)
    middleware = PersonaMiddleware(
        persona="math_teacher", ensemble="jekyll_hyde", model_settings={"max_tokens": 24}
    )
    agent = Agent(client=client, middleware=[middleware])

    response = await agent.run("What is 2 + 2?")

    turn = middleware.last_result
    assert response.text == turn.text and turn.text.strip()
    assert {c.name for c in turn.candidates} == {"persona", "neutral"}
    assert turn.model_calls >= 2
