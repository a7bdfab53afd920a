"""``PersonaChatCompletionClient``: the persona-plugins pipeline around any AutoGen client."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any, Literal

import pluggy
from autogen_core import CancellationToken, Component, ComponentModel
from autogen_core.models import (
    ChatCompletionClient,
    CreateResult,
    LLMMessage,
    ModelCapabilities,  # type: ignore[attr-defined]
    ModelInfo,
    RequestUsage,
)
from autogen_core.tools import Tool, ToolSchema
from opentelemetry.trace import TracerProvider
from pydantic import BaseModel, Field
from typing_extensions import Self

from persona_plugins import semconv
from persona_plugins.adapters.autogen._messages import Translation, to_core_messages
from persona_plugins.adapters.autogen._model import (
    AutoGenChatModel,
    add_usage,
    client_model_name,
    finish_reason,
)
from persona_plugins.config import PipelineConfig, flatten_generation_settings
from persona_plugins.errors import ModelCallError
from persona_plugins.pipeline import PersonaPipeline
from persona_plugins.results import TurnResult
from persona_plugins.tracing import SafeSpan

_CHUNK = re.compile(r"\S+\s*|\s+")


def _create_result(turn: TurnResult) -> CreateResult:
    chosen = next((c for c in turn.candidates if c.name == turn.chosen), None)
    return CreateResult(
        finish_reason=finish_reason(chosen.finish_reason if chosen else None),
        content=turn.text,
        usage=RequestUsage(
            prompt_tokens=turn.usage.input_tokens, completion_tokens=turn.usage.output_tokens
        ),
        cached=False,
    )


class PersonaChatCompletionClientConfig(BaseModel):
    """Serialized form: the inner client's component and the pipeline configuration."""

    client: ComponentModel
    pipeline: dict[str, Any] = Field(default_factory=dict)


class PersonaChatCompletionClient(
    ChatCompletionClient, Component[PersonaChatCompletionClientConfig]
):
    """Runs the persona-plugins pipeline around any AutoGen ``ChatCompletionClient``.

    Install with ``pip install "persona-plugins[autogen]"``.

    Text turns go through the whole pipeline (persona, ensemble, refinement, guardrails). Turns
    with tools, JSON output, images or function-call messages get the persona's system message
    only and are otherwise passed to the inner client untouched, so tool calls work as before.

    Example::

        import asyncio
        from autogen_agentchat.agents import AssistantAgent
        from persona_plugins.adapters.autogen import (
            PersonaChatCompletionClient,
            embedded_model_client,
        )

        async def main() -> None:
            client = PersonaChatCompletionClient(embedded_model_client(), persona="pirate_captain")
            agent = AssistantAgent("captain", model_client=client)
            result = await agent.run(task="Where is the treasure?")
            print(result.messages[-1].content)

        asyncio.run(main())

    The client is a serializable component::

        config = client.dump_component()
        same = ChatCompletionClient.load_component(config)

    Args:
        inner: the AutoGen client that does the real model calls.
        config: a :class:`~persona_plugins.PipelineConfig` or a mapping of its fields.
        plugin_manager: the persona-plugins plugin manager (default: the shared one).
        tracer_provider: OpenTelemetry tracer provider (default: the global one).
        **overrides: config fields on top of ``config`` (``persona="historian"``,
            ``ensemble="jekyll_hyde"``).

    Attributes:
        last_result: the :class:`~persona_plugins.TurnResult` of the latest pipeline turn.
        model_calls: model calls made through this client so far.
    """

    component_type = "model"
    component_config_schema = PersonaChatCompletionClientConfig
    component_provider_override = "persona_plugins.adapters.autogen.PersonaChatCompletionClient"

    def __init__(
        self,
        inner: ChatCompletionClient,
        config: PipelineConfig | Mapping[str, Any] | None = None,
        *,
        plugin_manager: pluggy.PluginManager | None = None,
        tracer_provider: TracerProvider | None = None,
        **overrides: Any,
    ):
        if not isinstance(inner, ChatCompletionClient):
            raise TypeError(
                f"inner must be an AutoGen ChatCompletionClient, got {type(inner).__name__}; "
                "wrap a persona-plugins ChatModel with ChatModelCompletionClient first"
            )
        self.inner = inner
        self.pipeline = PersonaPipeline(
            AutoGenChatModel(inner),
            config,
            plugin_manager=plugin_manager,
            tracer_provider=tracer_provider,
            **overrides,
        )
        self._model_name = client_model_name(inner)
        self.last_result: TurnResult | None = None
        self.model_calls = 0
        self._usage = RequestUsage(prompt_tokens=0, completion_tokens=0)

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
        translation, view = self._translate(messages, cancellation_token, extra_create_args)
        if tools or json_output or not translation.text_only:
            prepared = await self.pipeline.prepare(translation.messages, model=view)
            with self._direct_span(streaming=False) as span:
                call = self.inner.create(
                    translation.back(prepared.prompt),
                    tools=tools,
                    tool_choice=tool_choice,
                    json_output=json_output,
                    extra_create_args=self._direct_args(extra_create_args),
                    cancellation_token=cancellation_token,
                )
                timeout = self.pipeline.config.timeout_s
                result = await (asyncio.wait_for(call, timeout) if timeout else call)
                self._record_direct(span, result)
            return result
        return _create_result(await self._run(translation.messages, view))

    def create_stream(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        """Stream text chunks, then exactly one ``CreateResult``.

        With persona injection only (no ensemble, refinement or guardrails) and for tool turns,
        the inner client's own stream passes straight through; otherwise the turn runs first and
        its final text is streamed in word-sized chunks.
        """

        async def stream() -> AsyncGenerator[str | CreateResult, None]:
            translation, view = self._translate(messages, cancellation_token, extra_create_args)
            direct = tools or json_output or not translation.text_only or self.pipeline.can_stream
            if direct:
                prepared = await self.pipeline.prepare(translation.messages, model=view)
                chunks = self.inner.create_stream(
                    translation.back(prepared.prompt),
                    tools=tools,
                    tool_choice=tool_choice,
                    json_output=json_output,
                    extra_create_args=self._direct_args(extra_create_args),
                    cancellation_token=cancellation_token,
                )
                timeout = self.pipeline.config.timeout_s
                with self._direct_span(streaming=True) as span:
                    while True:
                        try:
                            step = chunks.__anext__()
                            chunk = await (asyncio.wait_for(step, timeout) if timeout else step)
                        except StopAsyncIteration:
                            break
                        if isinstance(chunk, CreateResult):
                            self._record_direct(span, chunk)
                        yield chunk
                return
            turn = await self._run(translation.messages, view)
            for piece in _CHUNK.findall(turn.text):
                yield piece
            yield _create_result(turn)

        return stream()

    def _translate(
        self,
        messages: Sequence[LLMMessage],
        cancellation_token: CancellationToken | None,
        extra_create_args: Mapping[str, Any],
    ) -> tuple[Translation, AutoGenChatModel]:
        """Core messages for this call, and a view of the inner client bound to it."""
        translation = to_core_messages(messages)
        view = AutoGenChatModel(
            self.inner,
            originals=translation.originals,
            cancellation_token=cancellation_token,
            extra_create_args=extra_create_args,
            model_name=self._model_name,
        )
        return translation, view

    async def _run(self, messages: Any, view: AutoGenChatModel) -> TurnResult:
        try:
            turn = await self.pipeline.run(messages, model=view)
        except ModelCallError as exc:
            # The inner client's own exception, unchanged, is what AutoGen users catch and retry.
            if exc.__cause__ is not None and not isinstance(exc.__cause__, asyncio.CancelledError):
                raise exc.__cause__ from None
            raise
        self.last_result = turn
        self._add(
            RequestUsage(
                prompt_tokens=turn.usage.input_tokens, completion_tokens=turn.usage.output_tokens
            ),
            calls=turn.model_calls,
        )
        return turn

    def _direct_args(self, extra_create_args: Mapping[str, Any]) -> dict[str, Any]:
        # The same precedence as pipeline turns: the config's model_settings over the caller's.
        return {
            **extra_create_args,
            **flatten_generation_settings(self.pipeline.config.model_settings),
        }

    def _direct_span(self, *, streaming: bool) -> Any:
        """A ``chat`` span for a call passed straight to the inner client."""
        name = self._model_name
        return self.pipeline.telemetry.span(
            f"chat {name}",
            {
                semconv.GEN_AI_OPERATION_NAME: semconv.OP_CHAT,
                semconv.GEN_AI_REQUEST_MODEL: name,
                semconv.GEN_AI_PROVIDER_NAME: "autogen",
                "persona_plugins.direct": True,
                "persona_plugins.streaming": streaming,
            },
        )

    def _record_direct(self, span: SafeSpan, result: CreateResult) -> None:
        self._add(result.usage, calls=1)
        span.set_many(
            {
                semconv.GEN_AI_USAGE_INPUT_TOKENS: result.usage.prompt_tokens,
                semconv.GEN_AI_USAGE_OUTPUT_TOKENS: result.usage.completion_tokens,
                semconv.GEN_AI_RESPONSE_FINISH_REASONS: [result.finish_reason],
            }
        )

    def _add(self, usage: RequestUsage, *, calls: int) -> None:
        self.model_calls += calls
        self._usage = add_usage(self._usage, usage)

    # -- everything else delegates ---------------------------------------------------------------

    async def close(self) -> None:
        await self.inner.close()

    def actual_usage(self) -> RequestUsage:
        return self._usage  # every call this client makes is a real one: actual equals total

    def total_usage(self) -> RequestUsage:
        return self._usage

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

    def _to_config(self) -> PersonaChatCompletionClientConfig:
        return PersonaChatCompletionClientConfig(
            client=self.inner.dump_component(),
            pipeline=self.pipeline.config.model_dump(mode="json", exclude_defaults=True),
        )

    @classmethod
    def _from_config(cls, config: PersonaChatCompletionClientConfig) -> Self:
        inner = ChatCompletionClient.load_component(config.client)
        return cls(inner, config.pipeline)
