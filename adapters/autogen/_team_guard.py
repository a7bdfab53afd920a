"""``TeamGuardHandler``: guardrails for AutoGen teams, as a runtime ``InterventionHandler``."""

from __future__ import annotations

import logging
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

_log = logging.getLogger("persona_plugins.guardrails")


class TeamGuardHandler(DefaultInterventionHandler, TeamGuard):
    """Guardrails for a whole AutoGen team: each member's messages and the discussion as a whole.

    Install with ``pip install "persona-plugins[autogen]"``.

    Pass it to the ``SingleThreadedAgentRuntime`` the team runs on. Each message a member
    publishes goes to :meth:`~persona_plugins.adapter_kit.TeamGuard.review`: the pipeline's guard
    operation with the member's persona, and the team checks (monopolization, drift from the task,
    discussion length). With ``guard="enforce"`` the message is *rewritten*, never dropped
    (dropping an agent response makes the team wait forever): a blocked message becomes a one-line
    notice, and team findings add a note for the next speaker. ``guard="monitor"`` only records.

    ``runtime = SingleThreadedAgentRuntime(intervention_handlers=[TeamGuardHandler(max_turns=8)])``,
    then ``RoundRobinGroupChat(agents, ..., runtime=runtime)``: the README's *Bias guardrails*
    section has the whole script.

    Args (those of :class:`~persona_plugins.adapter_kit.TeamGuard`):
        task: the team's task (default: read from the first ``user`` message of the run).
        guard: ``enforce`` (rewrite), ``monitor`` (record only) or ``off``.
        detectors: detectors to run on each message (default: the config default); ``[]`` runs
            the team checks only.
        personas: agent name -> persona (object, catalog name or file).
        model: a persona-plugins chat model or an AutoGen client for the optional model checks and
            for regeneration (default: none; regeneration then annotates instead).
        plugin_manager, tracer_provider, meter_provider: as for the pipeline.
        **team_settings: the team checks' settings (``max_share``, ``min_turns``,
            ``drift_window``, ``drift_threshold``, ``max_turns``, ``max_words``,
            ``repeat_every``): :class:`~persona_plugins.guardrails.team.TeamMonitor`'s, checked by
            the core (an unknown name is a :class:`~persona_plugins.ConfigError`).

    Attributes:
        findings: every finding so far, each with ``metadata["speaker"]`` and ``["turn"]``.
        monitor: the :class:`~persona_plugins.guardrails.team.TeamMonitor` (its ``transcript``).
        rewrites: how many messages were rewritten.
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
        try:
            if isinstance(message, GroupChatStart):
                self._task_from(message)
            elif isinstance(message, GroupChatMessage):
                await self._check(message.message)
            elif isinstance(message, GroupChatAgentResponse):
                await self._check(message.response.chat_message)
        except Exception:  # a guardrail problem never breaks the team
            _log.warning("the team guard could not check a message", exc_info=True)
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
