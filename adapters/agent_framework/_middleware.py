"""``PersonaMiddleware`` (chat middleware: the pipeline around every model call of an agent) and
``TeamGuardMiddleware`` (agent middleware: the team checks of a workflow)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pluggy
from agent_framework import (
    AgentContext,
    AgentMiddleware,
    AgentResponse,
    AgentResponseUpdate,
    ChatContext,
    ChatMiddleware,
    Content,
    Message,
)
from opentelemetry.trace import TracerProvider

from persona_plugins.adapter_kit import (
    Reply,
    TeamGuard,
    TurnRecord,
    Turns,
    chosen_candidate,
    rewrites_replies,
)
from persona_plugins.adapters.agent_framework._client import (
    AgentFrameworkChatModel,
    streamed,
    streamed_text,
    text_response,
    to_core_messages,
    usage_of,
    with_instructions,
)
from persona_plugins.config import PipelineConfig
from persona_plugins.model import Completion
from persona_plugins.pipeline import PersonaPipeline

Next = Callable[[], Awaitable[None]]


class _CallsTheAgentsClient:
    """The pipeline's model outside a call: every call passes the client it runs on instead."""

    model_name = "agent-framework"

    async def complete(self, messages: Any, **settings: Any) -> Completion:
        raise RuntimeError("PersonaMiddleware calls the chat client of the agent it runs in")


class PersonaMiddleware(TurnRecord, ChatMiddleware):
    """The persona-plugins pipeline around every model call of an Agent Framework agent (the
    README's *Agent Framework* section): ``Agent(..., middleware=[PersonaMiddleware(...)])``.

    The persona goes into the instructions position, ahead of the agent's own instructions, once
    per model call (tool loop included). A text turn runs the whole pipeline (Jekyll & Hyde,
    refinement, guard); a turn with tools, structured output or non-text content reaches the
    model with the persona only, and its text reply is refined and guarded. Streaming or not;
    with ``guard="enforce"`` a streamed reply is checked before its first chunk is passed on.

    Args:
        config: a :class:`~persona_plugins.PipelineConfig` or a mapping of its fields.
        plugin_manager, tracer_provider: as for :class:`~persona_plugins.PersonaPipeline`.
        **overrides: config fields on top of ``config`` (``persona="historian"``).

    Raises:
        GuardrailViolation: from ``agent.run`` when ``enforce`` blocks a reply.

    Attributes:
        last_result: the :class:`~persona_plugins.TurnResult` of the latest model call.
        model_calls, usage: model calls and tokens spent through this middleware so far.
    """

    def __init__(
        self,
        config: PipelineConfig | Mapping[str, Any] | None = None,
        *,
        plugin_manager: pluggy.PluginManager | None = None,
        tracer_provider: TracerProvider | None = None,
        **overrides: Any,
    ):
        self.pipeline = PersonaPipeline(
            _CallsTheAgentsClient(),
            config,
            plugin_manager=plugin_manager,
            tracer_provider=tracer_provider,
            **overrides,
        )
        self._turns = Turns(self.pipeline)

    async def process(self, context: ChatContext, call_next: Next) -> None:
        started = time.perf_counter()
        options = dict(context.options or {})
        translation = to_core_messages(context.messages, options.get("instructions"))
        view = AgentFrameworkChatModel(context.client, options=options, originals=translation)
        structured = options.get("response_format") is not None
        direct = bool(options.get("tools")) or structured or not translation.text_only
        if not direct and not self.pipeline.can_stream:
            turn = await self._turns.run(translation.messages, view)
            chosen = chosen_candidate(turn)
            reason = chosen.finish_reason if chosen else None
            response = text_response(turn.text, turn.usage, reason, view.model_name)
            context.result = streamed_text(response) if context.stream else response
            return
        prepared = await self.pipeline.prepare(translation.messages, model=view)
        instructions, messages = translation.back(prepared.prompt)
        # A new dict: the tool loop passes the same options to every call of a turn.
        context.options = with_instructions(options, instructions)
        if list(map(id, messages)) != list(map(id, context.messages)):
            context.messages = messages  # a plugin placed the persona among the messages
        await call_next()

        async def finish(response: Any) -> Any:
            calls = [c for m in response.messages for c in m.contents if c.type == "function_call"]
            reply = Reply(
                response.text,
                usage_of(response.usage_details),
                finish_reason=str(response.finish_reason) if response.finish_reason else None,
                tool_calls=[
                    {"id": c.call_id, "name": c.name, "arguments": c.arguments} for c in calls
                ],
                final=not calls,
                structured=structured,
            )
            if self._turns.passed_through(prepared, reply, started=started):
                return response  # nothing can change it: the turn's result is made if it is read
            turn = await self._turns.finish(translation.messages, prepared, reply, model=view)
            turn.duration_s = time.perf_counter() - started
            if turn.text == response.text:
                return response
            return text_response(turn.text, turn.usage, "stop", response.model)

        if not context.stream:
            context.result = await finish(context.result)
        elif rewrites_replies(self.pipeline.config) and not structured:
            updates = [update async for update in context.result]  # held back until checked
            received = await context.result.get_final_response()  # type: ignore[union-attr]
            final = await finish(received)
            context.result = streamed(updates, final) if final is received else streamed_text(final)
        else:
            context.stream_result_transforms.append(lambda response: _keep(finish(response)))


async def _keep(finishing: Awaitable[Any]) -> None:
    await finishing  # records the turn; the streamed response stays as it is


class TeamGuardMiddleware(AgentMiddleware, TeamGuard):
    """Guardrails for an Agent Framework workflow (``SequentialBuilder``, ``GroupChatBuilder``,
    ...): one instance in every participant's ``middleware``; it sees each agent's reply and the
    conversation before it.

    Each reply goes to :meth:`~persona_plugins.adapter_kit.TeamGuard.review` with the agent's
    name as speaker (monopolization, drift from the task, discussion length, and every detector
    with that speaker's persona); with ``guard="enforce"`` it is rewritten, never dropped.

    Args: those of :class:`~persona_plugins.adapter_kit.TeamGuard`; ``task`` defaults to the
    first user message an agent receives, and ``model`` may also be an Agent Framework client.
    """

    def __init__(self, task: str | None = None, *, model: Any = None, **options: Any):
        if model is not None and not callable(getattr(model, "complete", None)):
            model = AgentFrameworkChatModel(model)
        TeamGuard.__init__(self, task, model=model, **options)

    async def process(self, context: AgentContext, call_next: Next) -> None:
        first = next((m for m in context.messages if m.role == "user" and m.text), None)
        if first is not None:
            self.set_task(first.text)
        await call_next()
        speaker = context.agent.name or "agent"
        if context.stream:
            updates = [update async for update in context.result]  # type: ignore[union-attr]
            received = await context.result.get_final_response()  # type: ignore[union-attr]
        else:
            received = context.result
        text = await self.review(speaker, received.text)
        if text == received.text:
            final = received
        else:
            reply = Message("assistant", [text], author_name=speaker)
            final = AgentResponse(messages=[reply], usage_details=received.usage_details)
            update = AgentResponseUpdate(
                contents=[Content.from_text(text)], role="assistant", author_name=speaker
            )
            updates = [update]
        context.result = streamed(updates, final) if context.stream else final
