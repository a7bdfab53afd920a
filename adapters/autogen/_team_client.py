"""``TeamGuardClient``: the team guardrails from a member's own model client, on any runtime."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any, Literal

from autogen_core import CancellationToken, Component, ComponentModel
from autogen_core.models import (
    AssistantMessage,
    ChatCompletionClient,
    CreateResult,
    LLMMessage,
    ModelCapabilities,  # type: ignore[attr-defined]
    ModelInfo,
    RequestUsage,
)
from autogen_core.tools import Tool, ToolSchema
from pydantic import BaseModel, Field
from typing_extensions import Self

from persona_plugins.adapter_kit import TeamGuard, held_until_final
from persona_plugins.adapters.autogen._messages import to_core_messages
from persona_plugins.adapters.autogen._model import AutoGenChatModel, chunk_text
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


class TeamGuardClient(ChatCompletionClient, Component[TeamGuardClientConfig]):
    """The team guardrails for one member of an AutoGen team, from the member's model client:
    works on every runtime, ``GrpcWorkerAgentRuntime`` included, where no
    ``InterventionHandler`` can be installed (the README's *Bias guardrails* section).

    Each text reply of the inner client goes to
    :meth:`~persona_plugins.adapter_kit.TeamGuard.review_reply` with the messages the member
    sent to its model, which hold the discussion the member received (its own earlier replies
    and the other members' messages, each under its ``source``): the team checks
    (monopolization, drift from the task, discussion length) run over that transcript, and the
    detectors over the reply. With ``guard="enforce"`` the reply is rewritten as
    :class:`~persona_plugins.adapters.autogen.TeamGuardHandler` would: a blocked one becomes a
    one-line notice, a team finding adds a note for the next speakers. Tool calls and structured
    (``json_output``) replies pass through unchecked. A guard that fails logs a warning and
    leaves the reply as it was, or withholds it with ``guard_errors="closed"`` (the core's
    :meth:`~persona_plugins.adapter_kit.TeamGuard.review` decides). The checks see what the
    member's model sees: with a bounded model context (``BufferedChatCompletionContext``) they
    judge that window only. Do not wrap a ``SelectorGroupChat``'s own ``model_client``: it picks
    speakers and is no member.

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

    component_type = "model"
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
        if not isinstance(inner, ChatCompletionClient):
            raise TypeError(
                f"inner must be an AutoGen ChatCompletionClient, got {type(inner).__name__}"
            )
        if not isinstance(speaker, str) or not speaker.strip():
            raise ConfigError(
                f"TeamGuardClient needs the member's name as speaker, got {speaker!r}"
            )
        checker = AutoGenChatModel(model) if isinstance(model, ChatCompletionClient) else model
        self.inner = inner
        self.speaker = speaker
        self.team_guard = TeamGuard(task, model=checker, **options)
        self._task = task
        self._settings = {k: v for k, v in options.items() if k not in _RUNTIME_ONLY}

    @property
    def findings(self) -> list[Finding]:
        """Every finding of this member's guard so far (``metadata["speaker"]``, ``["turn"]``)."""
        return self.team_guard.findings

    # -- the two calls AutoGen makes -------------------------------------------------------------

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        result = await self.inner.create(
            messages,
            tools=tools,
            tool_choice=tool_choice,
            json_output=json_output,
            extra_create_args=extra_create_args,
            cancellation_token=cancellation_token,
        )
        return await self._review(messages, result, json_output)

    def create_stream(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
        **kwargs: Any,
    ) -> AsyncGenerator[str | CreateResult, None]:
        """Stream the inner client's chunks, then exactly one ``CreateResult``. With
        ``guard="enforce"`` a text reply's chunks are held until it is reviewed, and a rewritten
        reply is streamed as its new text."""

        async def stream() -> AsyncGenerator[str | CreateResult, None]:
            chunks = self.inner.create_stream(
                messages,
                tools=tools,
                tool_choice=tool_choice,
                json_output=json_output,
                extra_create_args=extra_create_args,
                cancellation_token=cancellation_token,
                **kwargs,
            )
            async for item in held_until_final(
                chunks,
                hold=self.team_guard.may_rewrite and not json_output,
                is_final=lambda chunk: isinstance(chunk, CreateResult),
                finish=lambda result: self._review(messages, result, json_output),
                text_of=chunk_text,
            ):
                yield item

        return stream()

    async def _review(
        self, messages: Sequence[LLMMessage], result: CreateResult, json_output: Any
    ) -> CreateResult:
        """A text reply reviewed by the team guard; anything else as it came."""
        if not isinstance(result.content, str) or json_output:
            return result
        text = await self.team_guard.review_reply(self.speaker, result.content, _received(messages))
        if text == result.content:
            return result
        return result.model_copy(update={"content": text})

    # -- everything else delegates ---------------------------------------------------------------

    async def close(self) -> None:
        await self.inner.close()

    def actual_usage(self) -> RequestUsage:
        return self.inner.actual_usage()

    def total_usage(self) -> RequestUsage:
        return self.inner.total_usage()

    def count_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []
    ) -> int:
        return self.inner.count_tokens(messages, tools=tools)

    def remaining_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []
    ) -> int:
        return self.inner.remaining_tokens(messages, tools=tools)

    @property
    def capabilities(self) -> ModelCapabilities:  # type: ignore[override]
        return self.inner.capabilities  # type: ignore[no-any-return]

    @property
    def model_info(self) -> ModelInfo:
        return self.inner.model_info

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
