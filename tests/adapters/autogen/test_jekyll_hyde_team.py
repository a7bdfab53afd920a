"""Jekyll & Hyde through the AutoGen client, inside a real team on the embedded model."""

from __future__ import annotations

import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.conditions import MaxMessageTermination
from autogen_agentchat.teams import RoundRobinGroupChat

from persona_plugins.adapters.autogen import PersonaChatCompletionClient, embedded_model_client

pytestmark = pytest.mark.model


async def test_every_agent_of_a_team_answers_through_jekyll_and_hyde():
    inner = embedded_model_client(generation={"max_tokens": 40})
    clients = [
        PersonaChatCompletionClient(inner, persona=name, ensemble="jekyll_hyde")
        for name in ("chef", "physician")
    ]
    agents = [
        AssistantAgent(name, model_client=client)
        for name, client in zip(("chef", "physician"), clients, strict=True)
    ]
    team = RoundRobinGroupChat(agents, termination_condition=MaxMessageTermination(3))
    result = await team.run(task="Is it safe to eat raw cookie dough? Answer yes or no.")
    replies = [m for m in result.messages if m.source in ("chef", "physician")]
    assert [m.source for m in replies] == ["chef", "physician"]
    for client in clients:
        turn = client.last_result
        assert turn is not None
        assert {c.name for c in turn.candidates} == {"persona", "neutral"}
        assert turn.judgement is not None
        assert client.model_calls == turn.model_calls == 2 + turn.judgement.model_calls
        assert client.total_usage().completion_tokens == turn.usage.output_tokens
