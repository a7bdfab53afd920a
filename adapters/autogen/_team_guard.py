"""``TeamGuardHandler``: guardrails for AutoGen teams, as a runtime ``InterventionHandler``."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import pluggy
from autogen_agentchat.messages import BaseTextChatMessage, StopMessage
from autogen_agentchat.teams._group_chat._events import (
    GroupChatAgentResponse,
    GroupChatMessage,
    GroupChatStart,
)
from autogen_core import AgentId, DefaultInterventionHandler, DropMessage, MessageContext
from autogen_core.models import ChatCompletionClient
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from persona_plugins import semconv
from persona_plugins.adapters.autogen._model import AutoGenChatModel
from persona_plugins.config import PipelineConfig
from persona_plugins.guardrails import NoModel, guard_pipeline
from persona_plugins.guardrails.team import TeamMonitor
from persona_plugins.metrics import PipelineMetrics
from persona_plugins.model import ChatModel, Message
from persona_plugins.persona import Persona, resolve_persona
from persona_plugins.pipeline import PersonaPipeline, collect_personas
from persona_plugins.plugins import get_plugin_manager
from persona_plugins.results import Finding
from persona_plugins.tracing import Telemetry, finding_event

_log = logging.getLogger("persona_plugins.guardrails")

#: What a blocked message is rewritten to (a message is never dropped: that hangs the team).
WITHHELD_TEMPLATE = "[persona-plugins withheld this message from {speaker}: {reason}]"
#: The note a team finding adds to the message that brought it, for the next speakers to read.
TEAM_NOTE_TEMPLATE = "\n\n[persona-plugins team guard: {message}]"


class TeamGuardHandler(DefaultInterventionHandler):
    """Guardrails for a whole AutoGen team: each member's messages and the discussion as a whole.

    Install with ``pip install "persona-plugins[autogen]"``.

    Pass it to the ``SingleThreadedAgentRuntime`` the team runs on. Each message a member
    publishes goes through the pipeline's guard operation (``PersonaPipeline.guard``: the
    detectors, abstention, stereotype, toxicity, persona contradiction and any a plugin adds, then
    in ``enforce`` mode the ``resolve_findings`` decision) and through the team checks of
    :mod:`persona_plugins.guardrails.team` (monopolization, drift from the task, discussion
    length). With ``guard="enforce"`` the message is *rewritten*, never dropped (dropping an agent
    response makes the team wait forever): the guard's text replaces it (a blocked message becomes
    a one-line notice), and team findings add a note for the next speaker. ``guard="monitor"``
    only records.

    Example::

        import asyncio
        from autogen_agentchat.agents import AssistantAgent
        from autogen_agentchat.conditions import MaxMessageTermination
        from autogen_agentchat.teams import RoundRobinGroupChat
        from autogen_core import SingleThreadedAgentRuntime
        from persona_plugins.adapters.autogen import TeamGuardHandler, embedded_model_client

        async def main() -> None:
            guard = TeamGuardHandler(guard="enforce", max_share=0.6, max_turns=4)
            runtime = SingleThreadedAgentRuntime(intervention_handlers=[guard])
            runtime.start()
            client = embedded_model_client(generation={"max_tokens": 60})
            team = RoundRobinGroupChat(
                [AssistantAgent("planner", client), AssistantAgent("critic", client)],
                # the task counts as a message: 6 messages are 5 replies, one past max_turns
                termination_condition=MaxMessageTermination(6),
                runtime=runtime,
            )
            await team.run(task="Plan a picnic for six people; spend under 50 euros.")
            await runtime.stop_when_idle()
            for item in guard.findings:
                print(item.metadata["speaker"], item.detector, item.message)

        asyncio.run(main())

    Args:
        task: the team's task (default: read from the first ``user`` message of the run).
        guard: ``enforce`` (rewrite), ``monitor`` (record only) or ``off``.
        detectors: detectors to run on each message (default: the config default); ``[]`` runs
            the team checks only.
        personas: agent name -> persona (object, catalog name or file), for the detectors that
            read the persona (abstention, stereotype, contradiction).
        model: a persona-plugins chat model or an AutoGen client for the optional model checks and
            for regeneration (default: none; regeneration then annotates instead).
        max_share, min_turns, drift_window, drift_threshold, max_turns, max_words, repeat_every:
            the team checks' settings (see :class:`~persona_plugins.guardrails.team.TeamMonitor`).
        plugin_manager, tracer_provider, meter_provider: as for the pipeline.

    Attributes:
        findings: every finding so far, each with ``metadata["speaker"]`` and ``["turn"]``.
        monitor: the :class:`~persona_plugins.guardrails.team.TeamMonitor` (its ``transcript``).
        rewrites: how many messages were rewritten.
    """

    def __init__(
        self,
        task: str | None = None,
        *,
        guard: str = "enforce",
        detectors: list[str] | None = None,
        personas: Mapping[str, Persona | str] | None = None,
        model: ChatModel | ChatCompletionClient | None = None,
        max_share: float = 0.6,
        min_turns: int = 4,
        drift_window: int = 3,
        drift_threshold: float = 0.15,
        max_turns: int | None = 12,
        max_words: int | None = None,
        repeat_every: int = 3,
        plugin_manager: pluggy.PluginManager | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ):
        overrides: dict[str, Any] = {"guard": guard}
        if detectors is not None:
            overrides["detectors"] = list(detectors)
        self.config = PipelineConfig.build(None, **overrides)
        self.pm = plugin_manager or get_plugin_manager()
        catalog = collect_personas(self.pm) if personas else {}
        self.personas: dict[str, Persona] = {
            name: p if isinstance(p, Persona) else resolve_persona(p, catalog)  # type: ignore[misc]
            for name, p in (personas or {}).items()
        }
        if isinstance(model, ChatCompletionClient):
            model = AutoGenChatModel(model)
        self.model: ChatModel = model if model is not None else NoModel()
        self.monitor = TeamMonitor(
            task,
            max_share=max_share,
            min_turns=min_turns,
            drift_window=drift_window,
            drift_threshold=drift_threshold,
            max_turns=max_turns,
            max_words=max_words,
            repeat_every=repeat_every,
        )
        self.telemetry = Telemetry(tracer_provider)
        self.metrics = PipelineMetrics(meter_provider)
        self._providers = (tracer_provider, meter_provider)
        self._pipelines: dict[str, PersonaPipeline] = {}
        self.findings: list[Finding] = []
        self.rewrites = 0
        self._seen: set[str] = set()

    # -- the runtime's calls ---------------------------------------------------------------------

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

    # -- work ------------------------------------------------------------------------------------

    def _task_from(self, start: GroupChatStart) -> None:
        for item in start.messages or []:
            if isinstance(item, BaseTextChatMessage) and item.source == "user":
                self.monitor.set_task(item.content)

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
            self.monitor.set_task(chat.content)
            return
        if self.config.guard == "off":
            return
        speaker, original = chat.source, chat.content
        started = time.perf_counter()
        attributes = {
            semconv.GEN_AI_OPERATION_NAME: "guard",
            semconv.GEN_AI_AGENT_NAME: speaker,
            semconv.PP_GUARD: self.config.guard,
        }
        with self.telemetry.span("persona_plugins team_guard", attributes) as span:
            persona = self.personas.get(speaker)
            task_messages = [Message.user(self.monitor.task)] if self.monitor.task else []
            # The guard operation puts the detectors' findings on its stage span and in the
            # findings counter; the team findings are recorded here.
            outcome = None
            if self.config.detectors:
                outcome = await self._pipeline(speaker, persona).guard(
                    original, task_messages or None
                )
            team_findings = self.monitor.add(speaker, original)
            for finding in team_findings:
                self.metrics.finding(finding.detector, finding.severity)
                span.event(semconv.GEN_AI_EVALUATION_RESULT_EVENT, finding_event(finding))
            turn = len(self.monitor.transcript)
            message_findings = outcome.findings if outcome is not None else []
            stamped = [
                f.model_copy(update={"metadata": {**f.metadata, "speaker": speaker, "turn": turn}})
                for f in [*message_findings, *team_findings]
            ]
            self.findings.extend(stamped)
            span.set(semconv.PP_FINDINGS_COUNT, len(stamped))
            acted = outcome is not None and outcome.action != "allow"
            if self.config.guard != "enforce" or not (stamped or acted):
                return
            text, action = original, "allow"
            if outcome is not None and outcome.blocked:
                reason = outcome.resolution.reason if outcome.resolution else ""
                text = WITHHELD_TEMPLATE.format(
                    speaker=speaker, reason=reason or "blocked by the guardrails"
                )
                action = "block"
            elif outcome is not None:
                text, action = outcome.text, outcome.action
            for finding in team_findings:
                text += TEAM_NOTE_TEMPLATE.format(message=finding.message)
                action = "annotate" if action == "allow" else action
            if text != original:
                chat.content = text
                self.rewrites += 1
            span.set(semconv.PP_ACTION, action)
            self.metrics.stage("team_guard", time.perf_counter() - started)

    def _pipeline(self, speaker: str, persona: Persona | None) -> PersonaPipeline:
        if speaker not in self._pipelines:
            tracer_provider, meter_provider = self._providers
            self._pipelines[speaker] = guard_pipeline(
                persona=persona,
                config=self.config,
                model=self.model,
                plugin_manager=self.pm,
                tracer_provider=tracer_provider,
                meter_provider=meter_provider,
            )
        return self._pipelines[speaker]
