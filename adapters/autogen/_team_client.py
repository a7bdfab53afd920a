"""``TeamGuardClient``: the team guardrails from a member's own model client, on any runtime."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from autogen_core import Component, ComponentModel
from autogen_core.models import AssistantMessage, ChatCompletionClient, CreateResult, LLMMessage
from pydantic import BaseModel, Field
from typing_extensions import Self

from persona_plugins.adapter_kit import TeamGuard
from persona_plugins.adapters.autogen._base import Call, Stream, WrappingClient, checked_stream
from persona_plugins.adapters.autogen._messages import to_core_messages
from persona_plugins.adapters.autogen._model import AutoGenChatModel
from persona_plugins.errors import ConfigError
from persona_plugins.model import ChatModel, Message
from persona_plugins.persona import Persona
from persona_plugins.results import Finding

# TeamGuard arguments that are live objects, not settings: never serialized.
_RUNTIME_ONLY = frozenset({"plugin_manager", "tracer_provider", "meter_provider"})


class TeamGuardClientConfig(BaseModel):
    """Serialized form: the inner client's component, the speaker and the team guard settings."""

    client: ComponentModel
    speaker: str
    task: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)


class TeamGuardClient(WrappingClient, Component[TeamGuardClientConfig]):
    """The team guardrails for one member of an AutoGen team, from the member's model client: works
    on every runtime, ``GrpcWorkerAgentRuntime`` included, where no ``InterventionHandler`` can be
    installed (the README's *Bias guardrails* section).

    Each text reply of the inner client goes to
    :meth:`~persona_plugins.adapter_kit.TeamGuard.review_reply` with the messages the member sent
    to its model (the discussion it received, each message under its ``source``; with a bounded
    model context, that window only), and with ``guard="enforce"`` comes back rewritten as
    :class:`~persona_plugins.adapters.autogen.TeamGuardHandler` would rewrite it; a failure of the
    guard is handled as :meth:`~persona_plugins.adapter_kit.TeamGuard.review` says
    (``guard_errors``). Tool calls and structured (``json_output``) replies pass through
    unchecked. Do not wrap a ``SelectorGroupChat``'s own ``model_client``: it picks speakers and
    is no member.

    Args:
        inner: the member's AutoGen client (a ``PersonaChatCompletionClient`` or any other).
        speaker: the member's name, as the other members see it (the agent's ``name``).
        task: the team's task (default: the first message from the ``user``).
        model: a chat model (or AutoGen client) for the detectors' optional model checks.
        **options: those of :class:`~persona_plugins.adapter_kit.TeamGuard` (``guard``,
            ``detectors``, ``personas``, ``tracer_provider``, ...) and the team checks' settings
            (``max_share``, ``max_turns``, ...); an unknown one is a
            :class:`~persona_plugins.ConfigError`. Pass ``detectors=[]`` when ``inner`` is a
            ``PersonaChatCompletionClient`` that already guards each reply.

    Raises:
        TypeError: when ``inner`` is not an AutoGen ``ChatCompletionClient``.
        ConfigError: when ``speaker`` is empty, or a setting is unknown.

    Attributes:
        team_guard: the :class:`~persona_plugins.adapter_kit.TeamGuard` (``findings``,
            ``monitor``, ``rewrites``).
    """

    component_config_schema = TeamGuardClientConfig
    component_provider_override = "persona_plugins.adapters.autogen.TeamGuardClient"

    def __init__(
        self,
        inner: ChatCompletionClient,
        speaker: str,
        task: str | None = None,
        *,
        model: ChatModel | ChatCompletionClient | None = None,
        **options: Any,
    ):
        super().__init__(inner)
        if not isinstance(speaker, str) or not speaker.strip():
            raise ConfigError(
                f"TeamGuardClient needs the member's name as speaker, got {speaker!r}"
            )
        checker = AutoGenChatModel(model) if isinstance(model, ChatCompletionClient) else model
        self.speaker = speaker
        self.team_guard = TeamGuard(task, model=checker, **options)
        self._task = task
        self._settings = {k: v for k, v in options.items() if k not in _RUNTIME_ONLY}

    @property
    def findings(self) -> list[Finding]:
        """Every finding of this member's guard so far (``metadata["speaker"]``, ``["turn"]``)."""
        return self.team_guard.findings

    # -- the two calls AutoGen makes; everything else is the inner client's ----------------------

    async def _create(self, call: Call) -> CreateResult:
        return await self._review(call, await self.inner.create(call.messages, **call.arguments()))

    async def _stream(self, call: Call) -> Stream:
        """The inner client's chunks, then exactly one ``CreateResult``. With ``guard="enforce"``
        a text reply's chunks are held until it is reviewed, and a rewritten reply is streamed as
        its new text."""
        chunks = self.inner.create_stream(call.messages, **call.arguments(), **call.stream_options)
        async for item in checked_stream(
            chunks,
            hold=self.team_guard.may_rewrite and not call.json_output,
            finish=lambda result: self._review(call, result),
        ):
            yield item

    async def _review(self, call: Call, result: CreateResult) -> CreateResult:
        """A text reply reviewed by the team guard; anything else as it came."""
        if not isinstance(result.content, str) or call.json_output:
            return result
        received = _received(call.messages)
        text = await self.team_guard.review_reply(self.speaker, result.content, received)
        if text == result.content:
            return result
        return result.model_copy(update={"content": text})

    # -- component serialization -----------------------------------------------------------------

    def _to_config(self) -> TeamGuardClientConfig:
        personas = self._settings.get("personas") or {}
        objects = sorted(name for name, p in personas.items() if isinstance(p, Persona))
        if objects:
            raise ConfigError(
                f"TeamGuardClient for {self.speaker!r}: the personas of {objects} are objects, "
                "which a component cannot hold; give catalog names or files to serialize it"
            )
        return TeamGuardClientConfig(
            client=self.inner.dump_component(),
            speaker=self.speaker,
            task=self._task,
            settings=dict(self._settings),
        )

    @classmethod
    def _from_config(cls, config: TeamGuardClientConfig) -> Self:
        inner = ChatCompletionClient.load_component(config.client)
        return cls(inner, config.speaker, config.task, **config.settings)


def _received(messages: Sequence[LLMMessage]) -> list[Message]:
    """The conversation a member sent to its model, as core messages (tool calls left out)."""
    spoken = [
        m
        for m in messages
        if not (isinstance(m, AssistantMessage) and not isinstance(m.content, str))
    ]
    return list(to_core_messages(spoken).messages)
