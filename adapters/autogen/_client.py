"""``PersonaChatCompletionClient``: the persona-plugins pipeline around any AutoGen client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import pluggy
from autogen_core import Component, ComponentModel
from autogen_core.models import ChatCompletionClient, CreateResult, LLMMessage, RequestUsage
from opentelemetry.trace import TracerProvider
from pydantic import BaseModel, Field
from typing_extensions import Self

from persona_plugins.adapter_kit import (
    LazyPrepared,
    Plain,
    Reply,
    TurnRecord,
    Turns,
    call_span,
    chosen_candidate,
    in_span,
    messages_as_sent,
    quick_allowed,
    quick_head,
    record_call,
    record_passed_through,
    record_turn,
    rewrites_replies,
    stream_spans,
    text_chunks,
    timed_steps,
    turn_span,
    usage_from,
    with_timeout,
)
from persona_plugins.adapters.autogen._base import Call, Stream, WrappingClient, checked_stream
from persona_plugins.adapters.autogen._messages import (
    Recall,
    Translation,
    plain_messages,
    to_core_messages,
)
from persona_plugins.adapters.autogen._model import (
    AutoGenChatModel,
    client_model_name,
    request_usage,
    text_result,
)
from persona_plugins.config import PipelineConfig, flatten_generation_settings
from persona_plugins.injection import StaticHead
from persona_plugins.model import Usage
from persona_plugins.pipeline import PersonaPipeline
from persona_plugins.results import PreparedPrompt, TurnResult
from persona_plugins.tracing import NOT_RECORDING, SafeSpan


class PersonaChatCompletionClientConfig(BaseModel):
    """Serialized form: the inner client's component and the pipeline configuration."""

    client: ComponentModel
    pipeline: dict[str, Any] = Field(default_factory=dict)


class PersonaChatCompletionClient(
    TurnRecord, WrappingClient, Component[PersonaChatCompletionClientConfig]
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
        super().__init__(inner)
        self.pipeline = PersonaPipeline(
            AutoGenChatModel(inner),
            config,
            plugin_manager=plugin_manager,
            tracer_provider=tracer_provider,
            **overrides,
        )
        self._model_name = client_model_name(inner)
        self._turns = Turns(self.pipeline)
        self._recall = Recall()  # the previous call's translations, reused while unchanged
        self._info = AutoGenChatModel(inner, model_name=self._model_name)  # reads model_info

    # -- the two calls AutoGen makes -------------------------------------------------------------

    async def _create(self, call: Call) -> CreateResult:
        started = time.perf_counter()
        quick = self._quick(call)
        if quick is not None:
            return await self._create_quick(call, *quick, started)
        translation, view = self._translate(call)
        # Persona injection alone goes straight to the inner client, as a tool call does.
        if self._whole_turn(call, translation):
            return _create_result(await self._turns.run(translation.messages, view))
        if call.cancellation_token is not None and call.cancellation_token.is_cancelled():
            raise asyncio.CancelledError("the call's cancellation token was cancelled")
        if not self.pipeline.telemetry.recording():  # neither span would record: none is made
            prepared, sent, args = await self._prepare_direct(translation, view, call)
            result = await self._inner_create(sent, args)
            usage = usage_from(result.usage)
            return await self._finish(
                translation, view, prepared, result, usage, call, started, NOT_RECORDING
            )
        with turn_span(self.pipeline, self._model_name) as traced:
            prepared, sent, args = await self._prepare_direct(translation, view, call)
            with self._call_span() as span:
                result = await self._inner_create(sent, args)
                usage = _recorded(span, result)
            return await self._finish(
                translation, view, prepared, result, usage, call, started, traced
            )

    async def _stream(self, call: Call) -> Stream:
        """See the README: the persona-only stream is the inner client's own."""
        started = time.perf_counter()
        translation, view = self._translate(call)
        if self._whole_turn(call, translation):
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
                prepared, sent, args = await self._prepare_direct(translation, view, call)
            span = start_call()
            chunks = self.inner.create_stream(sent, **args, **call.stream_options)

            async def finish(result: CreateResult) -> CreateResult:
                usage = _recorded(span, result)
                span.end()
                with traced.current():
                    return await self._finish(
                        translation, view, prepared, result, usage, call, started, traced
                    )

            async for item in checked_stream(
                in_span(span, timed_steps(chunks, self.pipeline.config.timeout_s)),
                hold=rewrites_replies(self.pipeline.config) and not call.json_output,
                finish=finish,
            ):
                yield item
        except Exception as exc:
            span.error(exc)
            traced.error(exc)
            raise
        finally:
            span.end()
            traced.end()

    def _quick(self, call: Call) -> tuple[StaticHead, list[Plain]] | None:
        """The persona's head message and the call's plain-text messages, when the call can go
        to the inner client with no turn machinery at all: persona injection alone (a static
        persona, nothing but the built-in persona hooks), nothing recording spans or
        measurements, every message plain text, and the persona's message put first (not merged
        into a leading system message). None: the usual path. (A plugin watching turns is looked
        for after the call, by ``Turns.passed_through``, which hands such a turn back.)"""
        if not quick_allowed(self.pipeline):
            return None
        plain = plain_messages(call.messages)
        if not plain:  # an empty conversation is the usual path's to refuse
            return None
        if self._info.client is not self.inner:  # the inner client was replaced
            self._info = AutoGenChatModel(self.inner, model_name=self._model_name)
        head = quick_head(self.pipeline, self._info, plain[0][0])
        return None if head is None else (head, plain)

    async def _create_quick(
        self, call: Call, head: StaticHead, plain: list[Plain], started: float
    ) -> CreateResult:
        """:meth:`_create` for a call :meth:`_quick` allows: the persona's system message and the
        caller's messages go to the inner client as they are; the turn's result (and the core
        messages in it) is made only if :attr:`last_result` is read."""
        if call.cancellation_token is not None and call.cancellation_token.is_cancelled():
            raise asyncio.CancelledError("the call's cancellation token was cancelled")
        sent = head.placed(call.messages, self._recall.head)
        result = await self._inner_create(sent, self._arguments(call))
        usage = usage_from(result.usage)
        prepared, reply = LazyPrepared(head, plain), _reply(result, usage, call)
        if self._turns.passed_through(prepared, reply, started=started):
            return result
        # a plugin watches turns (or the config changed while the model answered)
        translation, view = self._translate(call)
        return await self._finish_turn(translation, view, prepared(), result, reply, NOT_RECORDING)

    # -- helpers ---------------------------------------------------------------------------------

    def _translate(self, call: Call) -> tuple[Translation, AutoGenChatModel]:
        """Core messages for this call, and a view of the inner client bound to it."""
        translation = to_core_messages(call.messages, self._recall)
        view = AutoGenChatModel(
            self.inner,
            originals=translation.originals,
            cancellation_token=call.cancellation_token,
            extra_create_args=call.extra_create_args,
            model_name=self._model_name,
        )
        return translation, view

    def _whole_turn(self, call: Call, translation: Translation) -> bool:
        """A text turn (no tools, no structured output, text messages only) with more to it
        than the persona: the whole turn runs in the pipeline."""
        text_turn = not call.tools and not call.json_output and translation.text_only
        return text_turn and not self.pipeline.can_stream

    async def _finish(
        self,
        translation: Translation,
        view: AutoGenChatModel,
        prepared: PreparedPrompt,
        result: CreateResult,
        usage: Usage,
        call: Call,
        started: float,
        traced: SafeSpan,
    ) -> CreateResult:
        """A tool call comes back untouched; a text reply is refined and guarded (finish_reply)."""
        reply = _reply(result, usage, call)
        if self._turns.passed_through(prepared, reply, started=started):
            record_passed_through(traced, prepared, reply)
            return result  # nothing can change it: the turn's result is made if it is read
        return await self._finish_turn(translation, view, prepared, result, reply, traced)

    async def _finish_turn(
        self,
        translation: Translation,
        view: AutoGenChatModel,
        prepared: PreparedPrompt,
        result: CreateResult,
        reply: Reply,
        traced: SafeSpan,
    ) -> CreateResult:
        """The turn of a reply that a plugin watches or that may still change (finish_reply)."""
        turn = await self._turns.finish(translation.messages, prepared, reply, model=view)
        record_turn(traced, turn)
        if turn.text != reply.text:
            return _create_result(turn)
        if turn.model_calls > 1:  # the reply stands; its usage includes the guard's calls
            return result.model_copy(update={"usage": request_usage(turn.usage)})
        return result

    async def _prepare_direct(
        self, translation: Translation, view: AutoGenChatModel, call: Call
    ) -> tuple[PreparedPrompt, list[LLMMessage], dict[str, Any]]:
        """The set-up of a call that goes to the inner client itself (tools, structured output,
        streaming): the persona's prepared prompt, the messages as sent and the call's arguments
        (the config's model_settings over the caller's extra_create_args)."""
        prepared = await self.pipeline.prepare(translation.messages, model=view)
        return prepared, translation.back(prepared.prompt), self._arguments(call)

    def _arguments(self, call: Call) -> dict[str, Any]:
        """The call's arguments for the inner client: the config's model_settings over the
        caller's extra_create_args."""
        settings = self.pipeline.config.model_settings
        args = call.arguments()
        args["extra_create_args"] = (
            {**call.extra_create_args, **flatten_generation_settings(settings)}
            if settings
            else dict(call.extra_create_args)
        )
        return args

    def _inner_create(
        self, sent: list[LLMMessage], args: dict[str, Any]
    ) -> Awaitable[CreateResult]:
        """The inner client's ``create``, under the configured timeout when there is one."""
        created = self.inner.create(sent, **args)
        timeout = self.pipeline.config.timeout_s
        return with_timeout(created, timeout) if timeout else created

    def _call_span(self) -> AbstractContextManager[SafeSpan]:
        telemetry, provider = self.pipeline.telemetry, AutoGenChatModel.provider_name
        return call_span(telemetry, self._model_name, provider, streaming=False)

    # -- what is not the inner client's: usage, and the persona in token counts ---------------

    def actual_usage(self) -> RequestUsage:
        return self.total_usage()  # every call is real: actual equals total

    def total_usage(self) -> RequestUsage:
        return request_usage(self._turns.tally.usage)

    def _as_sent(self, messages: Sequence[LLMMessage]) -> list[LLMMessage]:
        """The messages with the persona's system prompt, as the inner client will count them."""
        translation = to_core_messages(messages)
        view = AutoGenChatModel(self.inner, model_name=self._model_name)
        config, last = self.pipeline.config, self._turns.last
        prompt = last.system_prompt if last else None  # the latest persona text
        sent = messages_as_sent(config, translation.messages, system_prompt=prompt, model=view)
        return translation.back(sent)

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


def _recorded(span: SafeSpan, result: CreateResult) -> Usage:
    """The usage of a call the inner client answered, recorded on its span with how it ended."""
    usage = usage_from(result.usage)
    record_call(span, usage, result.finish_reason)
    return usage


def _reply(result: CreateResult, usage: Usage, call: Call) -> Reply:
    """What the inner client answered: its text, or the tool calls it hands back (not final)."""
    content, reason, structured = result.content, result.finish_reason, bool(call.json_output)
    if isinstance(content, str):
        return Reply(content, usage, finish_reason=reason, structured=structured)
    calls = [vars(c) for c in content]
    return Reply("", usage, 1, reason, calls, final=False, structured=structured)


def _create_result(turn: TurnResult) -> CreateResult:
    chosen = chosen_candidate(turn)
    return text_result(turn.text, turn.usage, chosen.finish_reason if chosen else None)
