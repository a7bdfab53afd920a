"""The Semantic Kernel part of the command line (``demo --framework semantic-kernel``, ``ask
--framework semantic-kernel``), imported only when a command asks for Semantic Kernel."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from semantic_kernel import Kernel
from semantic_kernel.agents import (
    ChatCompletionAgent,
    GroupChatOrchestration,
    RoundRobinGroupChatManager,
)
from semantic_kernel.agents.runtime import InProcessRuntime

from persona_plugins import ChatModel, PersonaPluginsError, PipelineConfig, TurnResult
from persona_plugins.adapters.semantic_kernel import (
    ChatModelChatCompletion,
    PersonaChatCompletion,
    PersonaPlugin,
)

if TYPE_CHECKING:
    from persona_plugins.cli._common import TeamRun

#: Added after the model in the demo summary.
DEMO_NOTE = "Semantic Kernel group chat"


async def ask(
    model: ChatModel, question: str, config: PipelineConfig, tracer_provider: Any
) -> TurnResult | None:
    """``PersonaPlugin``'s ``answer`` function on a kernel whose chat service is ``model``."""
    kernel = Kernel()
    kernel.add_service(ChatModelChatCompletion(model))
    plugin = PersonaPlugin(config, tracer_provider=tracer_provider)
    kernel.add_plugin(plugin, "persona")
    quiet_semantic_kernel_logs()
    try:
        await kernel.invoke(plugin_name="persona", function_name="answer", question=question)
    except Exception as exc:
        # SK wraps what a function raises in KernelInvokeException; ours says it better.
        cause = exc.__cause__
        if isinstance(cause, PersonaPluginsError):
            raise cause from cause.__cause__
        raise
    return plugin.last_result


async def run_team(run: TeamRun) -> list[tuple[int, int, int]]:
    """The demo's team: a round-robin ``GroupChatOrchestration`` of one persona
    ``ChatCompletionAgent`` per member; returns ``(model calls, tokens in, tokens out)`` per
    member."""
    runtime = InProcessRuntime()
    quiet_semantic_kernel_logs()
    try:
        inner = ChatModelChatCompletion(run.model)
        services = [
            PersonaChatCompletion(inner, persona=persona, tracer_provider=run.tracer_provider)
            for _, persona in run.members
        ]
        agents = [
            # No instructions: the persona is the whole system prompt, as in the AutoGen demo.
            ChatCompletionAgent(name=name, description=persona.description, service=service)
            for (name, persona), service in zip(run.members, services, strict=True)
        ]
        group_chat = GroupChatOrchestration(
            members=list[Any](agents),
            manager=RoundRobinGroupChatManager(max_rounds=run.replies),
            agent_response_callback=lambda message: run.on_reply(message.name, message.content),
        )
        runtime.start()
        result = await group_chat.invoke(task=run.question, runtime=runtime)
        await result.get()
    finally:
        await runtime.stop_when_idle()
    return [
        (service.model_calls, service.usage.input_tokens, service.usage.output_tokens)
        for service in services
    ]


def quiet_semantic_kernel_logs() -> None:
    # SK logs a failed function at ERROR before raising; with no logging configured Python would
    # print those records to stderr, on top of the one line the command prints for the error.
    logger = logging.getLogger("semantic_kernel")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
