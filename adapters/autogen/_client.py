"""``PersonaChatCompletionClient``: the persona-plugins pipeline around any AutoGen client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import AbstractContextManager
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

from persona_plugins.adapter_kit import (
    Turns,
    call_span,
    chosen_candidate,
    held_until_final,
    in_span,
    messages_as_sent,
    record_call,
    record_turn,
    rewrites_replies,
    stream_spans,
    text_chunks,
    timed_steps,
    turn_span,
    usage_from,
    with_timeout,
)
from persona_plugins.adapters.autogen._messages import Translation, to_core_messages
from persona_plugins.adapters.autogen._model import (
    AutoGenChatModel,
    chunk_text,
    client_model_name,
    finish_reason,
    request_usage,
)
from persona_plugins.config import PipelineConfig, flatten_generation_settings
from persona_plugins.pipeline import PersonaPipeline
from persona_plugins.results import PreparedPrompt, TurnResult
from persona_plugins.tracing import NOT_RECORDING, SafeSpan


class PersonaChatCompletionClientConfig(BaseModel):
    """Serialized form: the inner client's component and the pipeline configuration."""

    client: ComponentModel
    pipeline: dict[str, Any] = Field(default_factory=dict)


class PersonaChatCompletionClient(
    ChatCompletionClient, Component[PersonaChatCompletionClientConfig]
):
    """Runs the persona-plugins pipeline around any AutoGen ``ChatCompletionClient``; a
    serializable component. Behaviour (text turns, tool turns, streaming, token counts): the
    README's *AutoGen in ten lines* section.

    Args:
        inner: the AutoGen client that does the real model calls.
        config: a :class:`~persona_plugins.PipelineConfig` or a mapping of its fields.
        plugin_manager, tracer_provider: as for :class:`~persona_plugins.PersonaPipeline`.
        **overrides: config fields on top of ``config`` (``persona="historian"``).

    Raises:
        TypeError: when ``inner`` is not an AutoGen ``ChatCompletionClient``.

    Attributes:
        last_result: the :class:`~persona_plugins.TurnResult` of the latest call.
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
        self._turns = Turns(self.pipeline)

    @property
    def last_result(self) -> TurnResult | None:
        return self._turns.last

    @property
    def model_calls(self) -> int:
        return self._turns.tally.calls

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
        started = time.perf_counter()
        translation, view = self._translate(messages, cancellation_token, extra_create_args)
        # Persona injection alone goes straight to the inner client, as a tool call does.
        if _text_turn(translation, tools, json_output) and not self.pipeline.can_stream:
            return _create_result(await self._turns.run(translation.messages, view))
        if cancellation_token is not None and cancellation_token.is_cancelled():
            raise asyncio.CancelledError("the call's cancellation token was cancelled")
        with turn_span(self.pipeline, self._model_name) as traced:
            prepared, sent, args = await self._prepare_direct(
                translation, view, tools, tool_choice, json_output, extra_create_args
            )
            with self._span(streaming=False) as span:
                call = self.inner.create(sent, cancellation_token=cancellation_token, **args)
                result = await with_timeout(call, self.pipeline.config.timeout_s)
                record_call(span, usage_from(result.usage), result.finish_reason)
            return await self._finish(
                translation, view, prepared, result, json_output, started, traced
            )

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
        """Stream text chunks, then exactly one ``CreateResult`` (see the README); extra
        keyword arguments go to the inner client's ``create_stream``."""

        async def stream() -> AsyncGenerator[str | CreateResult, None]:
            started = time.perf_counter()
            translation, view = self._translate(messages, cancellation_token, extra_create_args)
            if _text_turn(translation, tools, json_output) and not self.pipeline.can_stream:
                result = _create_result(await self._turns.run(translation.messages, view))
                for piece in text_chunks(str(result.content)):
                    yield piece
                yield result
                return
            # Spans started, not made current: a span current across a yield would parent the
            # consumer's own spans (and fail to detach when the consumer stops early).
            traced, start_call = stream_spans(
                self.pipeline, self._model_name, AutoGenChatModel.provider_name
            )
            span = NOT_RECORDING
            try:
                with traced.current():
                    prepared, sent, args = await self._prepare_direct(
                        translation, view, tools, tool_choice, json_output, extra_create_args
                    )
                span = start_call()
                chunks = self.inner.create_stream(
                    sent, cancellation_token=cancellation_token, **args, **kwargs
                )

                async def finish(chunk: CreateResult) -> CreateResult:
                    record_call(span, usage_from(chunk.usage), chunk.finish_reason)
                    span.end()
                    with traced.current():
                        return await self._finish(
                            translation, view, prepared, chunk, json_output, started, traced
                        )

                async for item in held_until_final(
                    in_span(span, timed_steps(chunks, self.pipeline.config.timeout_s)),
                    hold=rewrites_replies(self.pipeline.config) and not json_output,
                    is_final=lambda chunk: isinstance(chunk, CreateResult),
                    finish=finish,
                    text_of=chunk_text,
                ):
                    yield item
            except Exception as exc:
                span.error(exc)
                traced.error(exc)
                raise
            finally:
                span.end()
                traced.end()

        return stream()

    # -- helpers ---------------------------------------------------------------------------------

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

    async def _finish(
        self,
        translation: Translation,
        view: AutoGenChatModel,
        prepared: PreparedPrompt,
        result: CreateResult,
        json_output: Any,
        started: float,
        traced: SafeSpan,
    ) -> CreateResult:
        """A tool call comes back untouched; a text reply is refined and guarded (finish_reply)."""
        content = result.content
        text = content if isinstance(content, str) else ""
        facts: dict[str, Any] = dict(
            usage=usage_from(result.usage),
            finish_reason=result.finish_reason,
            tool_calls=[] if isinstance(content, str) else [vars(c) for c in content],
        )
        if not traced.recording and self._turns.passed_through(
            prepared, text, started=started, **facts
        ):
            return result  # nothing can change it: the turn's result is made if it is read
        turn = await self._turns.finish(
            translation.messages,
            prepared,
            text,
            model=view,
            structured=bool(json_output),
            final=isinstance(content, str),
            **facts,
        )
        record_turn(traced, turn)
        if turn.text != text:
            return _create_result(turn)
        if turn.model_calls > 1:  # the reply stands; its usage includes the guard's calls
            return result.model_copy(update={"usage": request_usage(turn.usage)})
        return result

    async def _prepare_direct(
        self,
        translation: Translation,
        view: AutoGenChatModel,
        tools: Sequence[Tool | ToolSchema],
        tool_choice: Any,
        json_output: Any,
        extra_create_args: Mapping[str, Any],
    ) -> tuple[PreparedPrompt, list[LLMMessage], dict[str, Any]]:
        """The set-up of a call that goes to the inner client itself (tools, structured output,
        streaming): the persona's prepared prompt, the messages as sent and the call's arguments."""
        prepared = await self.pipeline.prepare(translation.messages, model=view)
        args = self._direct_args(tools, tool_choice, json_output, extra_create_args)
        return prepared, translation.back(prepared.prompt), args

    def _direct_args(
        self,
        tools: Sequence[Tool | ToolSchema],
        tool_choice: Any,
        json_output: Any,
        extra_create_args: Mapping[str, Any],
    ) -> dict[str, Any]:
        """The inner call's arguments; the config's model_settings over the caller's."""
        settings = flatten_generation_settings(self.pipeline.config.model_settings)
        extra = {**extra_create_args, **settings}
        return dict(
            tools=tools, tool_choice=tool_choice, json_output=json_output, extra_create_args=extra
        )

    def _span(self, *, streaming: bool) -> AbstractContextManager[SafeSpan]:
        telemetry, provider = self.pipeline.telemetry, AutoGenChatModel.provider_name
        return call_span(telemetry, self._model_name, provider, streaming=streaming)

    # -- everything else delegates ---------------------------------------------------------------

    async def close(self) -> None:
        await self.inner.close()

    def actual_usage(self) -> RequestUsage:
        return request_usage(self._turns.tally.usage)  # every call is real: actual equals total

    def total_usage(self) -> RequestUsage:
        return request_usage(self._turns.tally.usage)

    def count_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []
    ) -> int:
        """The inner client's count, the persona's system prompt included."""
        return self.inner.count_tokens(self._as_sent(messages), tools=tools)

    def remaining_tokens(
        self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []
    ) -> int:
        return self.inner.remaining_tokens(self._as_sent(messages), tools=tools)

    def _as_sent(self, messages: Sequence[LLMMessage]) -> list[LLMMessage]:
        translation = to_core_messages(messages)
        view = AutoGenChatModel(self.inner, model_name=self._model_name)
        config, last = self.pipeline.config, self._turns.last
        prompt = last.system_prompt if last else None  # the latest persona text
        sent = messages_as_sent(config, translation.messages, system_prompt=prompt, model=view)
        return translation.back(sent)

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


def _text_turn(
    translation: Translation, tools: Sequence[Tool | ToolSchema], json_output: Any
) -> bool:
    """A plain text turn (no tools, no structured output, text messages only): the whole turn
    runs in the pipeline."""
    return not tools and not json_output and translation.text_only


def _create_result(turn: TurnResult) -> CreateResult:
    chosen = chosen_candidate(turn)
    return CreateResult(
        finish_reason=finish_reason(chosen.finish_reason if chosen else None),
        content=turn.text,
        usage=request_usage(turn.usage),
        cached=False,
    )
