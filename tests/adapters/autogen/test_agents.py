"""Real AutoGen agents and teams on the embedded SmolLM2 model, each agent with its own persona.

SmolLM2-135M is weak, so these tests check structure (a non-empty answer, whose call carried
which persona, how many calls), never the content of an answer. Generation is capped at 48 tokens
to keep the suite quick.
"""

from __future__ import annotations

import pytest
from autogen_agentchat.agents import AssistantAgent, SocietyOfMindAgent
from autogen_agentchat.base import TaskResult
from autogen_agentchat.conditions import MaxMessageTermination
from autogen_agentchat.messages import ModelClientStreamingChunkEvent, TextMessage
from autogen_agentchat.teams import RoundRobinGroupChat, SelectorGroupChat
from autogen_core.models import SystemMessage, UserMessage

from persona_plugins.adapters.autogen import PersonaChatCompletionClient, embedded_model_client
from persona_plugins.injection import render_persona
from persona_plugins.integrations.llama_cpp import LlamaCppChatModel

from .doubles import RecordingModelClient

pytestmark = pytest.mark.model

MAX_TOKENS = 48


@pytest.fixture(scope="module")
def bounded_model() -> LlamaCppChatModel:
    """The embedded SmolLM2, capped at a few dozen tokens a call."""
    model = LlamaCppChatModel(generation={"max_tokens": MAX_TOKENS})
    model.load()
    return model


def persona_agent(
    name: str, persona: str, model: LlamaCppChatModel, **agent_options
) -> tuple[AssistantAgent, PersonaChatCompletionClient, RecordingModelClient]:
    inner = RecordingModelClient(model)
    client = PersonaChatCompletionClient(inner, persona=persona)
    agent = AssistantAgent(
        name,
        model_client=client,
        description=f"A {persona.replace('_', ' ')}.",
        system_message="Answer in one short sentence.",
        **agent_options,
    )
    return agent, client, inner


def prompt_of(client: PersonaChatCompletionClient) -> str:
    return render_persona(client.pipeline.config.persona, client.pipeline.config.persona_template)


def assert_persona_first(call: list, client: PersonaChatCompletionClient) -> None:
    assert isinstance(call[0], SystemMessage)
    assert call[0].content == prompt_of(client)


async def test_an_assistant_agent_answers_through_the_persona_client(bounded_model):
    agent, client, inner = persona_agent("captain", "pirate_captain", bounded_model)

    result = await agent.run(task="Where do pirates keep their treasure?")

    answer = result.messages[-1]
    assert isinstance(answer, TextMessage)
    assert answer.source == "captain"
    assert answer.content.strip()
    assert answer.models_usage is not None
    assert 0 < answer.models_usage.completion_tokens <= MAX_TOKENS
    [call] = inner.received
    assert_persona_first(call, client)
    assert call[1] == SystemMessage(content="Answer in one short sentence."), (
        "the agent's own system message follows the persona"
    )
    assert isinstance(call[-1], UserMessage)
    assert call[-1].content == "Where do pirates keep their treasure?"
    assert client.model_calls == 1


async def test_the_documented_embedded_client_runs_an_agent_with_a_persona():
    client = PersonaChatCompletionClient(
        embedded_model_client(generation={"max_tokens": MAX_TOKENS}), persona="pirate_captain"
    )
    agent = AssistantAgent("captain", model_client=client)

    result = await agent.run(task="Say hello to the crew.")

    assert isinstance(result.messages[-1], TextMessage)
    assert result.messages[-1].content.strip()
    turn = client.last_result
    assert turn is not None
    assert turn.persona is not None and turn.persona.name == "pirate_captain"
    assert turn.prompt[0].role == "system"
    assert turn.prompt[0].content == prompt_of(client)
    assert turn.model_calls == 1
    await client.close()


async def test_a_round_robin_team_gives_each_agent_its_own_persona(bounded_model):
    captain, captain_client, captain_inner = persona_agent(
        "captain", "pirate_captain", bounded_model
    )
    chef, chef_client, chef_inner = persona_agent("chef", "chef", bounded_model)
    team = RoundRobinGroupChat([captain, chef], termination_condition=MaxMessageTermination(3))

    result = await team.run(task="Plan a dinner on a ship.")

    assert [m.source for m in result.messages] == ["user", "captain", "chef"]
    assert all(isinstance(m, TextMessage) and m.content.strip() for m in result.messages)
    [captain_call] = captain_inner.received
    [chef_call] = chef_inner.received
    assert_persona_first(captain_call, captain_client)
    assert_persona_first(chef_call, chef_client)
    assert prompt_of(captain_client) != prompt_of(chef_client)
    assert not any(
        isinstance(m, SystemMessage) and m.content == prompt_of(captain_client) for m in chef_call
    ), "one agent's persona never leaks into another agent's call"
    assert any(m.content == result.messages[1].content for m in chef_call[1:]), (
        "the chef sees what the captain said"
    )


@pytest.mark.parametrize("ensemble", ["off", "jekyll_hyde"])
async def test_a_streaming_agent_emits_chunk_events_that_add_up_to_its_answer(
    bounded_model, ensemble
):
    inner = RecordingModelClient(bounded_model)
    # One judge attempt at most (no re-asks) keeps the test quick on the embedded model.
    client = PersonaChatCompletionClient(
        inner, persona="pirate_captain", ensemble=ensemble, judge={"retries": 0}
    )
    agent = AssistantAgent("captain", model_client=client, model_client_stream=True)

    events = [event async for event in agent.run_stream(task="Name one sea creature.")]

    chunks = [e for e in events if isinstance(e, ModelClientStreamingChunkEvent)]
    result = events[-1]
    assert isinstance(result, TaskResult)
    answer = result.messages[-1]
    assert isinstance(answer, TextMessage)
    assert chunks, "streaming agents see chunk events"
    assert all(c.source == "captain" for c in chunks)
    assert "".join(c.content for c in chunks) == answer.content
    assert answer.content.strip()
    assert len(inner.received) == client.model_calls
    if ensemble == "off":
        assert client.model_calls == 1
    else:
        assert client.model_calls >= 2, "persona and neutral candidates are both generated"
    assert any(call[0].content == prompt_of(client) for call in inner.received)


async def test_a_selector_team_keeps_the_selectors_own_client_free_of_personas(bounded_model):
    captain, captain_client, captain_inner = persona_agent(
        "captain", "pirate_captain", bounded_model
    )
    chef, chef_client, chef_inner = persona_agent("chef", "chef", bounded_model)
    selector = RecordingModelClient(bounded_model)
    team = SelectorGroupChat(
        [captain, chef],
        model_client=selector,
        termination_condition=MaxMessageTermination(3),
        allow_repeated_speaker=True,
    )

    result = await team.run(task="Plan a dinner on a ship.")

    speakers = [m.source for m in result.messages[1:]]
    assert len(result.messages) == 3
    assert set(speakers) <= {"captain", "chef"}
    assert all(isinstance(m, TextMessage) and m.content.strip() for m in result.messages)
    assert selector.received, "the selector asked its own model who speaks next"
    persona_prompts = {prompt_of(captain_client), prompt_of(chef_client)}
    for call in selector.received:
        assert not any(getattr(m, "content", None) in persona_prompts for m in call)
    for inner, client in ((captain_inner, captain_client), (chef_inner, chef_client)):
        for call in inner.received:
            assert_persona_first(call, client)
    assert len(captain_inner.received) + len(chef_inner.received) == len(speakers)


async def test_a_society_of_mind_agent_summarises_its_persona_team(bounded_model):
    captain, _, captain_inner = persona_agent("captain", "pirate_captain", bounded_model)
    chef, _, chef_inner = persona_agent("chef", "chef", bounded_model)
    inner_team = RoundRobinGroupChat(
        [captain, chef], termination_condition=MaxMessageTermination(3)
    )
    summariser_inner = RecordingModelClient(bounded_model)
    summariser = PersonaChatCompletionClient(summariser_inner, persona="historian")
    society = SocietyOfMindAgent("crew", team=inner_team, model_client=summariser)

    result = await society.run(task="Plan a dinner on a ship.")

    answer = result.messages[-1]
    assert isinstance(answer, TextMessage)
    assert answer.source == "crew"
    assert answer.content.strip()
    assert len(captain_inner.received) == len(chef_inner.received) == 1
    [summary_call] = summariser_inner.received
    assert_persona_first(summary_call, summariser)
    assert summariser.model_calls == 1
