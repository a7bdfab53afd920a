"""The Agent Framework part of the command line (``ask --framework agent-framework``, ``demo
--framework agent-framework``), imported only when a command asks for Agent Framework."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agent_framework import Agent, AgentExecutor, agent_middleware
from agent_framework.orchestrations import GroupChatBuilder

from persona_plugins import ChatModel, PipelineConfig, TurnResult
from persona_plugins.adapters.agent_framework import ChatModelChatClient, PersonaMiddleware

if TYPE_CHECKING:
    from persona_plugins.cli._common import TeamRun

#: Added after the model in the demo summary.
DEMO_NOTE = "Agent Framework group chat"


async def ask(
    model: ChatModel, question: str, config: PipelineConfig, tracer_provider: Any
) -> TurnResult | None:
    """One run of an ``Agent`` with ``PersonaMiddleware`` on a client backed by ``model``."""
    middleware = PersonaMiddleware(config, tracer_provider=tracer_provider)
    await Agent(client=ChatModelChatClient(model), middleware=[middleware]).run(question)
    return middleware.last_result


async def run_team(run: TeamRun) -> list[tuple[int, int, int]]:
    """The demo's team: a round-robin ``GroupChatBuilder`` workflow of one persona ``Agent`` per
    member on one shared client; returns ``(model calls, tokens in, tokens out)`` per member."""
    client = ChatModelChatClient(run.model)

    @agent_middleware
    async def report(context: Any, call_next: Callable[[], Any]) -> None:
        await call_next()
        if not context.stream:
            run.on_reply(context.agent.name, context.result.text)

    personas = [
        PersonaMiddleware(persona=p, tracer_provider=run.tracer_provider) for _, p in run.members
    ]
    agents = [
        # No instructions: the persona is the whole system prompt, as in the other demos.
        Agent(client=client, name=name, description=p.description, middleware=[m, report])
        for (name, p), m in zip(run.members, personas, strict=True)
    ]
    names = [name for name, _ in run.members]
    workflow = GroupChatBuilder(
        # A continuation user turn after the last reply: a small model repeats a conversation
        # that ends with another agent's (assistant) message instead of answering it.
        participants=[AgentExecutor(a, ensure_trailing_user_turn=True) for a in agents],
        selection_func=lambda state: names[state.current_round % len(names)],
        termination_condition=lambda chat: sum(m.role == "assistant" for m in chat) >= run.replies,
    ).build()
    await workflow.run(run.question)
    return [(m.model_calls, m.usage.input_tokens, m.usage.output_tokens) for m in personas]
