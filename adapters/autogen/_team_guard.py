"""``TeamGuardHandler``: guardrails for AutoGen teams, as a runtime ``InterventionHandler``."""

from __future__ import annotations

from typing import Any

from autogen_agentchat.messages import BaseTextChatMessage, StopMessage
from autogen_agentchat.teams._group_chat._events import (
    GroupChatAgentResponse,
    GroupChatMessage,
    GroupChatStart,
)
from autogen_core import AgentId, DefaultInterventionHandler, DropMessage, MessageContext
from autogen_core.models import ChatCompletionClient

from persona_plugins.adapter_kit import TeamGuard
from persona_plugins.adapters.autogen._model import AutoGenChatModel
from persona_plugins.model import ChatModel


class TeamGuardHandler(DefaultInterventionHandler, TeamGuard):
    """Guardrails for a whole AutoGen team, as an ``InterventionHandler`` for the team's
    ``SingleThreadedAgentRuntime`` (the README's *Bias guardrails* section has the whole script).

    Each member's message goes to :meth:`~persona_plugins.adapter_kit.TeamGuard.review`; with
    ``guard="enforce"`` it is rewritten, never dropped (dropping an agent response hangs the team).
    Only ``SingleThreadedAgentRuntime`` takes intervention handlers: on ``GrpcWorkerAgentRuntime``
    (or any runtime) wrap each member's model client in
    :class:`~persona_plugins.adapters.autogen.TeamGuardClient` instead.

    Args: those of :class:`~persona_plugins.adapter_kit.TeamGuard` (an unknown team setting is a
    :class:`~persona_plugins.ConfigError`); ``task`` defaults to the run's first ``user``
    message, and ``model`` may also be an AutoGen client.
    """

    def __init__(
        self,
        task: str | None = None,
        *,
        model: ChatModel | ChatCompletionClient | None = None,
        **options: Any,
    ):
        if isinstance(model, ChatCompletionClient):
            model = AutoGenChatModel(model)
        TeamGuard.__init__(self, task, model=model, **options)
        self._seen: set[str] = set()

    async def on_send(
        self, message: Any, *, message_context: MessageContext, recipient: AgentId
    ) -> Any | type[DropMessage]:
        if isinstance(message, GroupChatStart):
            self._task_from(message)
        return message

    async def on_publish(
        self, message: Any, *, message_context: MessageContext
    ) -> Any | type[DropMessage]:
        # A failure of the guard is TeamGuard.review's to handle (guard_errors): this translates.
        if isinstance(message, GroupChatStart):
            self._task_from(message)
        elif isinstance(message, GroupChatMessage):
            await self._check(message.message)
        elif isinstance(message, GroupChatAgentResponse):
            await self._check(message.response.chat_message)
        return message

    def _task_from(self, start: GroupChatStart) -> None:
        for item in start.messages or []:
            if isinstance(item, BaseTextChatMessage) and item.source == "user":
                self.set_task(item.content)

    async def _check(self, chat: Any) -> None:
        # The same message object travels in GroupChatMessage (to the output stream) and then in
        # GroupChatAgentResponse (to the other members): check it once, at its first appearance,
        # so that what the user sees and what the members read are the same rewritten text.
        if not isinstance(chat, BaseTextChatMessage) or isinstance(chat, StopMessage):
            return
        if chat.id in self._seen:
            return
        self._seen.add(chat.id)
        if chat.source == "user":
            self.set_task(chat.content)
            return
        chat.content = await self.review(chat.source, chat.content)
