"""The AutoGen part of the command line (``demo``, ``ask --framework autogen``), imported only
when a command asks for AutoGen."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.conditions import MaxMessageTermination
from autogen_agentchat.teams import RoundRobinGroupChat
from autogen_core.models import UserMessage

from persona_plugins import ChatModel, PipelineConfig, TurnResult
from persona_plugins.adapters.autogen import ChatModelCompletionClient, PersonaChatCompletionClient

if TYPE_CHECKING:
    from persona_plugins.cli._common import TeamRun

#: The AutoGen team is the demo's default: the summary names the model alone.
DEMO_NOTE = ""


async def ask(
    model: ChatModel, question: str, config: PipelineConfig, tracer_provider: Any
) -> TurnResult | None:
    """One turn of the client wrapper around an AutoGen client backed by ``model``."""
    inner = ChatModelCompletionClient(model)
    client = PersonaChatCompletionClient(inner, config, tracer_provider=tracer_provider)
    await client.create([UserMessage(content=question, source="user")])
    return client.last_result


async def run_team(run: TeamRun) -> list[tuple[int, int, int]]:
    """The demo's team: a ``RoundRobinGroupChat`` of one persona ``AssistantAgent`` per member;
    returns ``(model calls, tokens in, tokens out)`` per member."""
    inner = ChatModelCompletionClient(run.model)
    clients = [
        PersonaChatCompletionClient(inner, persona=persona, tracer_provider=run.tracer_provider)
        for _, persona in run.members
    ]
    agents = [
        AssistantAgent(
            name,
            model_client=client,
            description=persona.description,
            # The persona is the whole system prompt: SmolLM2-135M follows one instruction block
            # better than two.
            system_message=None,
        )
        for (name, persona), client in zip(run.members, clients, strict=True)
    ]
    team = RoundRobinGroupChat(
        list[Any](agents),
        # The task is a message too.
        termination_condition=MaxMessageTermination(run.replies + 1),
    )
    async for event in team.run_stream(task=run.question):
        source = getattr(event, "source", None)
        content = getattr(event, "content", None)
        if source and source != "user" and isinstance(content, str):
            run.on_reply(source, content)
    usages = [(client.model_calls, client.total_usage()) for client in clients]
    return [(calls, usage.prompt_tokens, usage.completion_tokens) for calls, usage in usages]
