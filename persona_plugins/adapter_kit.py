"""What every framework adapter needs, written once, with no framework import.

An adapter translates the framework's messages, calls the pipeline and translates the answer back.
The steps in between are the same whatever the framework, so they live here:

- :class:`Translation`, :func:`restore`: a framework's messages as core messages and back, the
  unchanged ones as their very originals;
- :func:`text_chunks`: a finished turn's text as stream chunks (word-sized, whitespace kept);
  :func:`held_until_final`: a framework stream whose reply is checked before its text goes out;
- :func:`framework_errors`: a failed turn raises the framework client's own exception;
- :func:`with_timeout` and :func:`timed_steps`: the per-call timeout, never swallowing a
  cancellation;
- :func:`chosen_candidate`, :func:`turn_summary`: reading a :class:`~persona_plugins.TurnResult`;
- :class:`Tally`: the calls and tokens an adapter object has spent; :class:`Turns`: the turns it
  ran (pipeline turns and finished replies), with the latest one and the tally;
  :class:`TurnRecord`: a wrapper's ``last_result``, ``model_calls`` and ``usage`` from its turns;
- :func:`messages_as_sent`, :func:`estimate_tokens`: the conversation with the persona, for
  synchronous token counting;
- :func:`call_span`, :func:`record_call`: the ``chat`` span of a call passed to the framework's
  client; :func:`turn_span`, :func:`record_turn` (:func:`record_passed_through`): the turn span
  around it; :func:`usage_from`: token counts from whatever record a framework keeps;
- :func:`require_chat_model`, :func:`model_config`, :func:`model_from_config`,
  :func:`close_model`: the chat models that back framework clients, checked, serialized and closed;
- :func:`findings_report`: findings as JSON, for a framework function that checks text;
- :class:`Reply`, :func:`passed_through_turn`: what the framework's own client answered (a tool
  call, a structured reply), with the persona injected and the tool calls noted;
- :func:`finish_reply`: the rest of a turn for a text reply the framework's own client made (an
  agent with tools that answered in text): refinement when configured, then the guard;
- :class:`TeamGuard`: the guardrails of a team conversation (each member's messages, and the team
  checks), for a framework's team hook to call with each message.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import pluggy
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from persona_plugins import semconv
from persona_plugins.concurrency import with_timeout
from persona_plugins.config import PipelineConfig
from persona_plugins.errors import ConfigError, ModelCallError
from persona_plugins.guard import collect_detectors
from persona_plugins.guardrails import NoModel, guard_pipeline
from persona_plugins.guardrails.team import TeamMonitor
from persona_plugins.injection import StaticHead, inject_persona, render_persona, static_head
from persona_plugins.metrics import PipelineMetrics
from persona_plugins.model import ChatModel, Completion, Message, Role, Usage
from persona_plugins.persona import Persona, resolve_persona
from persona_plugins.personas import collect_personas
from persona_plugins.plugins import check_names, get_plugin_manager
from persona_plugins.results import Candidate, Finding, GuardOutcome, PreparedPrompt, TurnResult
from persona_plugins.tracing import (
    SafeSpan,
    Telemetry,
    finding_event,
    turn_attributes,
    turn_outcome_attributes,
    turn_result_attributes,
)

if TYPE_CHECKING:
    from persona_plugins.pipeline import PersonaPipeline

__all__ = [
    "DIRECT",
    "MODEL_KINDS",
    "TEAM_NOTE_TEMPLATE",
    "TOOL_CALLS",
    "WITHHELD_TEMPLATE",
    "LazyPrepared",
    "Plain",
    "Reply",
    "Tally",
    "TeamGuard",
    "Translation",
    "TurnRecord",
    "Turns",
    "call_span",
    "chosen_candidate",
    "close_model",
    "estimate_tokens",
    "findings_report",
    "finish_reply",
    "framework_errors",
    "held_until_final",
    "in_span",
    "messages_as_sent",
    "model_config",
    "model_from_config",
    "passed_through_turn",
    "quick_allowed",
    "quick_head",
    "record_call",
    "record_passed_through",
    "record_turn",
    "require_chat_model",
    "restore",
    "rewrites_replies",
    "stream_spans",
    "text_chunks",
    "timed_steps",
    "turn_span",
    "turn_summary",
    "usage_from",
    "with_timeout",
]

T = TypeVar("T")
F = TypeVar("F")  # a framework's message type

_log = logging.getLogger("persona_plugins.guardrails")

#: The span attribute that marks a call passed straight to the framework's client.
DIRECT = "persona_plugins.direct"
#: The key under which a passed-through turn's candidate notes its tool calls (``metadata``).
TOOL_CALLS = "tool_calls"

_CHUNK = re.compile(r"\S+\s*|\s+")


# -- messages -------------------------------------------------------------------------------------


@dataclass
class Translation(Generic[F]):
    """A framework's messages as core messages, each remembering its original (``originals``,
    by ``id`` of the core message) so that the messages the pipeline leaves unchanged go back as
    the very same objects; ``text_only`` is False when any carries non-text content."""

    messages: list[Message] = field(default_factory=list)
    originals: dict[int, F] = field(default_factory=dict)
    text_only: bool = True

    def add(self, core: Message, original: F, *, plain: bool = True) -> None:
        self.messages.append(core)
        self.originals[id(core)] = original
        self.text_only &= plain


def restore(
    messages: Sequence[Message], originals: Mapping[int, F] | None, make: Callable[[Message], F]
) -> list[F]:
    """Core messages in a framework's form: the original of each unchanged one, ``make(message)``
    for the others (the persona's system message, a rewritten answer)."""
    found = (originals or {}).get
    return [original if (original := found(id(m))) is not None else make(m) for m in messages]


# -- streaming a finished turn --------------------------------------------------------------------


def text_chunks(text: str) -> list[str]:
    """``text`` cut into word-sized stream chunks that join back into exactly ``text``.

    >>> text_chunks("Aye,  two and\\ntwo.")
    ['Aye,  ', 'two ', 'and\\n', 'two.']
    """
    return _CHUNK.findall(text)


async def held_until_final(
    chunks: AsyncIterator[Any],
    *,
    hold: bool,
    is_final: Callable[[Any], bool],
    finish: Callable[[Any], Awaitable[Any]],
    text_of: Callable[[Any], str],
) -> AsyncIterator[Any]:
    """A framework stream passed on, with the reply checked before its text reaches the user.

    Chunks go on as they come, or, with ``hold``, are kept back; the final item (``is_final``) is
    given to ``finish`` (refinement, the guard), whose result goes out last: after the kept
    chunks when its text is unchanged (``text_of``), else after its new text in chunks.
    """
    held: list[Any] = []
    async for chunk in chunks:
        if not is_final(chunk):
            if hold:
                held.append(chunk)
            else:
                yield chunk
            continue
        final = await finish(chunk)
        unchanged = text_of(final) == text_of(chunk)
        for piece in held if unchanged else text_chunks(text_of(final)):
            yield piece
        yield final
        held = []
    if held:  # text held for a check that never came: say so rather than drop it silently
        raise RuntimeError(
            f"the model's stream ended without its final result ({len(held)} chunk(s) held "
            "back for the guard were not sent); the reply could not be checked"
        )


# -- errors and timeouts --------------------------------------------------------------------------


async def framework_errors(call: Awaitable[T]) -> T:
    """Await a pipeline call; when every model call of the turn failed, raise the framework
    client's own exception (the cause of the :class:`~persona_plugins.ModelCallError`), unchanged,
    since that is what framework users catch and retry on. A cancellation is never unwrapped."""
    try:
        return await call
    except ModelCallError as exc:
        cause = exc.__cause__
        if cause is None or isinstance(cause, asyncio.CancelledError):
            raise
        raise cause from None


async def timed_steps(stream: AsyncIterator[T], seconds: float | None) -> AsyncIterator[T]:
    """The items of ``stream``, each one awaited under :func:`with_timeout`."""
    while True:
        try:
            item = await with_timeout(stream.__anext__(), seconds)
        except StopAsyncIteration:
            return
        yield item


# -- reading a turn -------------------------------------------------------------------------------


def chosen_candidate(turn: TurnResult) -> Candidate | None:
    """The candidate a turn kept (None when no candidate carries the chosen name)."""
    return next((c for c in turn.candidates if c.name == turn.chosen), None)


def turn_summary(turn: TurnResult) -> dict[str, Any]:
    """The short per-turn summary adapters attach to the framework's answer (its metadata)."""
    summary: dict[str, Any] = {
        "persona": turn.persona.name if turn.persona else None,
        "chosen": turn.chosen,
        "model_calls": turn.model_calls,
        "action": turn.action,
        "findings": len(turn.findings),
    }
    chosen = chosen_candidate(turn)
    if chosen is not None and chosen.metadata.get(TOOL_CALLS):
        summary[TOOL_CALLS] = len(chosen.metadata[TOOL_CALLS])
    return summary


class Tally:
    """Model calls and tokens an adapter object has spent, over every turn it handled (kept as
    counts: a :class:`~persona_plugins.Usage` is made only when ``usage`` is read)."""

    __slots__ = ("calls", "input_tokens", "output_tokens")

    def __init__(self) -> None:
        self.calls = self.input_tokens = self.output_tokens = 0

    def add(self, usage: Usage | None, calls: int = 1) -> None:
        self.calls += calls
        if usage is not None:
            self.input_tokens += usage.input_tokens
            self.output_tokens += usage.output_tokens

    @property
    def usage(self) -> Usage:
        return Usage(input_tokens=self.input_tokens, output_tokens=self.output_tokens)


def findings_report(findings: Sequence[Finding]) -> str:
    """Findings as the JSON a framework function returns: ``{"clean": ..., "findings": [...]}``."""
    return json.dumps(
        {
            "clean": not findings,
            "findings": [f.model_dump(mode="json", exclude_none=True) for f in findings],
        },
        ensure_ascii=False,
    )


# -- calls passed to the framework's client -------------------------------------------------------


def _call_attributes(model_name: str, provider: str, streaming: bool) -> dict[str, Any]:
    return {
        semconv.GEN_AI_OPERATION_NAME: semconv.OP_CHAT,
        semconv.GEN_AI_REQUEST_MODEL: model_name,
        semconv.GEN_AI_PROVIDER_NAME: provider,
        DIRECT: True,
        "persona_plugins.streaming": streaming,
    }


def _turn_attributes(pipeline: PersonaPipeline, model_name: str) -> Callable[[], dict[str, Any]]:
    """The attributes of a passed-through call's turn span, built only if the span records."""
    config = pipeline.config
    return lambda: {**turn_attributes(config, model_name), DIRECT: True}


def call_span(
    telemetry: Telemetry, model_name: str, provider: str, *, streaming: bool
) -> AbstractContextManager[SafeSpan]:
    """The ``chat`` span of a call passed straight to the framework's client."""
    return telemetry.span(f"chat {model_name}", _call_attributes(model_name, provider, streaming))


def turn_span(pipeline: PersonaPipeline, model_name: str) -> AbstractContextManager[SafeSpan]:
    """The turn span of a call passed to the framework's client: named and shaped like a pipeline
    turn's (``invoke_workflow persona_pipeline``), so a traced call looks the same whichever way it
    went; give it the finished turn with :func:`record_turn`."""
    return pipeline.telemetry.span(semconv.SPAN_TURN, _turn_attributes(pipeline, model_name))


def stream_spans(
    pipeline: PersonaPipeline, model_name: str, provider: str
) -> tuple[SafeSpan, Callable[[], SafeSpan]]:
    """:func:`turn_span` and :func:`call_span` for a streamed call, started but not made current
    (see :meth:`~persona_plugins.tracing.Telemetry.start`): the turn span, and a function that
    starts the ``chat`` span under it. Make them current around each step (:func:`in_span`),
    never across a ``yield``, and end them."""
    telemetry = pipeline.telemetry
    turn = telemetry.start(semconv.SPAN_TURN, _turn_attributes(pipeline, model_name))

    def call() -> SafeSpan:
        with turn.current():
            attributes = _call_attributes(model_name, provider, True)
            return telemetry.start(f"chat {model_name}", attributes)

    return turn, call


async def in_span(span: SafeSpan, stream: AsyncIterator[T]) -> AsyncIterator[T]:
    """The items of ``stream``, with ``span`` current while each is awaited and not while the
    consumer holds it (so the consumer's own spans are not parented under the library's)."""
    iterator = aiter(stream)
    while True:
        try:
            with span.current():
                item = await anext(iterator)
        except StopAsyncIteration:
            return
        yield item


def record_turn(span: SafeSpan, turn: TurnResult | None) -> None:
    """What a finished turn adds to its :func:`turn_span` (nothing when it is not recorded)."""
    if turn is not None and span.recording:
        span.set_many(turn_result_attributes(turn))


def record_passed_through(span: SafeSpan, prepared: PreparedPrompt, reply: Reply) -> None:
    """What :func:`record_turn` adds for the turn of a reply passed straight through
    (:meth:`Turns.passed_through`), without building its :class:`~persona_plugins.TurnResult`:
    the same attributes as the turn :func:`passed_through_turn` makes."""
    if span.recording:
        usage = reply.usage or Usage()
        outcome = turn_outcome_attributes(
            prepared.persona, prepared.persona_source, "persona", reply.model_calls, usage
        )  # "persona": the one candidate's name
        span.set_many(outcome)


def record_call(span: SafeSpan, usage: Usage, finish_reason: str | None) -> None:
    """What a passed-through call cost and how it ended, on its span."""
    if not span.recording:
        return
    span.set_many(
        {
            semconv.GEN_AI_USAGE_INPUT_TOKENS: usage.input_tokens,
            semconv.GEN_AI_USAGE_OUTPUT_TOKENS: usage.output_tokens,
            semconv.GEN_AI_RESPONSE_FINISH_REASONS: [finish_reason] if finish_reason else None,
        }
    )


def usage_from(record: Any) -> Usage:
    """Token counts from a framework's usage record: a mapping or an object with
    ``prompt_tokens`` / ``completion_tokens`` (or ``input_tokens`` / ``output_tokens``); zero for
    None."""
    if record is None:
        return Usage()
    read: Callable[[str, None], Any] = (
        record.get if isinstance(record, Mapping) else partial(getattr, record)
    )

    prompt = read("prompt_tokens", None)
    if prompt is None:
        prompt = read("input_tokens", None)
    completion = read("completion_tokens", None)
    if completion is None:
        completion = read("output_tokens", None)
    return Usage(  # two ints: validating them is quicker than model_construct
        input_tokens=int(prompt or 0), output_tokens=int(completion or 0)
    )


def estimate_tokens(texts: Iterable[str]) -> int:
    """About four characters a token: a count for a model whose tokenizer is not at hand."""
    characters = sum(len(text) for text in texts)
    return max(1, characters // 4) if characters else 0


# -- the chat models behind framework clients ---------------------------------------------------

#: The chat models that have a config form (``kind`` -> class), for serializable framework clients.
MODEL_KINDS = {
    "llama_cpp": "persona_plugins.integrations.llama_cpp:LlamaCppChatModel",
    "openai_compatible": "persona_plugins.integrations.openai_compatible:OpenAICompatibleChatModel",
}


def require_chat_model(model: object) -> None:
    """Raise :class:`TypeError` unless ``model`` is a chat model (it has ``complete``)."""
    if not callable(getattr(model, "complete", None)):
        raise TypeError(
            "model must be a persona-plugins ChatModel (async complete(messages)), "
            f"got {type(model).__name__}"
        )


def model_config(model: ChatModel) -> tuple[str, dict[str, Any]]:
    """``(kind, options)`` that :func:`model_from_config` builds the same model from.

    Only the built-in models have a config form; an API key is never written (it is read from the
    environment on load). Any other model is a :class:`TypeError`.
    """
    if type(model).__name__ == "LlamaCppChatModel":  # no import: it would load llama.cpp
        llama: Any = model
        options = {"model_path": str(llama.model_path), "n_ctx": llama.n_ctx}
        return "llama_cpp", {**options, "generation": llama.generation}
    if type(model).__name__ == "OpenAICompatibleChatModel":  # no import: it needs httpx
        server: Any = model
        return "openai_compatible", {
            "base_url": server.base_url,
            "model": server.model_name,
            "timeout_s": server.timeout_s,
            "generation": server.generation,
            "max_retries": server.max_retries,
            "backoff_s": server.backoff_s,
            "max_wait_s": server.max_wait_s,
        }
    raise TypeError(
        f"cannot serialize a client around {type(model).__name__}: only LlamaCppChatModel and "
        "OpenAICompatibleChatModel have a config form"
    )


def model_from_config(kind: str, options: Mapping[str, Any]) -> ChatModel:
    """The chat model a :func:`model_config` pair describes."""
    import importlib

    module, _, name = MODEL_KINDS[kind].partition(":")
    model: ChatModel = getattr(importlib.import_module(module), name)(**options)
    return model


async def close_model(model: object) -> None:
    """Call the model's ``close()`` if it has one (sync or async)."""
    closer = getattr(model, "close", None)
    if callable(closer):
        outcome = closer()
        if inspect.isawaitable(outcome):
            await outcome


# -- turns the framework's own client answered ----------------------------------------------------


def messages_as_sent(
    config: PipelineConfig,
    messages: Sequence[Message],
    *,
    system_prompt: str | None = None,
    model: ChatModel | None = None,
) -> list[Message]:
    """The conversation as the model will receive it, persona included, computed without running
    a stage (token counting is synchronous, stages are not).

    The persona text is ``system_prompt`` (what the latest turn wrote), else the configured
    persona rendered with the configured template; it is placed as the built-in
    ``inject_persona`` places it (merged into a leading system message when ``model`` takes one
    system message only).
    """
    persona = config.persona
    if system_prompt is None and config.persona_mode != "none" and isinstance(persona, Persona):
        system_prompt = render_persona(persona, config.persona_template)
    if not system_prompt:
        return list(messages)
    placed: list[Message] = inject_persona(
        messages=messages,
        system_prompt=system_prompt,
        config=config,
        model=model,  # type: ignore[arg-type]
    )
    return placed


@dataclass(slots=True)  # not frozen: a frozen dataclass takes three times as long to make
class Reply:
    """What the framework's own client answered to a call made with the persona injected: its
    text, what it cost (``usage``, ``model_calls``), how it ended, the tool calls it asked for or
    made in its own function-calling loop (``{"id", "name", "arguments"}`` each), whether it is
    the agent's answer (``final``; False for tool calls handed back to the framework) and whether
    it is structured output (``structured``: JSON that no rewrite may touch)."""

    text: str
    usage: Usage | None = None
    model_calls: int = 1
    finish_reason: str | None = None
    tool_calls: Sequence[Mapping[str, Any]] = ()
    final: bool = True
    structured: bool = False


def passed_through_turn(prepared: PreparedPrompt, reply: Reply | str) -> TurnResult:
    """The :class:`~persona_plugins.TurnResult` of a call the framework's own client answered
    with the persona injected and nothing else (a tool call, a structured reply): one
    ``persona`` candidate, whose ``metadata["tool_calls"]`` lists the calls the model asked for.
    A plain string is a :class:`Reply` with that text."""
    reply = Reply(reply) if isinstance(reply, str) else reply
    text, model_calls, tool_calls = reply.text, reply.model_calls, reply.tool_calls
    usage = reply.usage or Usage()
    candidate = Candidate(
        name="persona",
        text=text,
        persona=prepared.persona.name if prepared.persona else None,
        usage=usage,
        model_calls=model_calls,
        finish_reason=reply.finish_reason,
        metadata={TOOL_CALLS: [dict(call) for call in tool_calls]} if tool_calls else {},
    )
    return TurnResult(
        text=text,
        persona=prepared.persona,
        persona_source=prepared.persona_source,
        persona_note=prepared.persona_note,
        system_prompt=prepared.system_prompt,
        prompt=prepared.prompt,
        candidates=[candidate],
        chosen=candidate.name,
        usage=usage,
        model_calls=model_calls,
    )


def quick_allowed(pipeline: PersonaPipeline) -> bool:
    """Whether a persona-only call may skip the turn machinery altogether: it
    :attr:`~persona_plugins.PersonaPipeline.can_stream` and nothing records spans or
    measurements. Cheap: an adapter asks it before reading the call's messages for
    :func:`quick_head`."""
    return (
        pipeline.can_stream and not pipeline.telemetry.recording() and not pipeline.metrics.enabled
    )


def quick_head(
    pipeline: PersonaPipeline, model: ChatModel, first_role: str | None
) -> StaticHead | None:
    """For a call :func:`quick_allowed` lets through: the persona's head message
    (:func:`~persona_plugins.injection.static_head`) when only the built-in persona hooks take
    part and the persona goes in a message of its own before one of ``first_role``. None: the
    adapter's usual path (``prepare()``, then the framework's client)."""
    return static_head(pipeline.hooks, pipeline.once, pipeline.config, model, first_role=first_role)


#: What translating a plain-text framework message reads: its role, its text and its speaker.
Plain = tuple[Role, str, str | None]


class LazyPrepared:
    """The prepared prompt of a call sent with a :func:`quick_head`, made from the texts recorded
    at call time (``plain``) when first asked for, the same object at every call."""

    __slots__ = ("_made", "head", "plain")

    def __init__(self, head: StaticHead, plain: Sequence[Plain]):
        self.head, self.plain = head, plain
        self._made: PreparedPrompt | None = None

    def __call__(self) -> PreparedPrompt:
        if self._made is None:
            messages = [
                Message(role=role, content=text, name=name) for role, text, name in self.plain
            ]
            self._made = self.head.prepared(messages)
        return self._made


def rewrites_replies(config: PipelineConfig) -> bool:
    """True when a text reply may still change after the model wrote it (refinement or the guard
    is on), so an adapter must hold a passed-through reply back until :func:`finish_reply`."""
    return config.refine != "off" or config.guard != "off"


class _Counted:
    """A chat model that counts the calls and tokens made through it."""

    def __init__(self, model: ChatModel):
        self.model = model
        self.tally = Tally()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)

    async def complete(self, messages: Sequence[Message], **settings: Any) -> Completion:
        completion = await self.model.complete(messages, **settings)
        self.tally.add(completion.usage)
        return completion


async def finish_reply(
    pipeline: PersonaPipeline,
    messages: Sequence[Message],
    prepared: PreparedPrompt,
    reply: Reply | str,
    *,
    model: ChatModel,
) -> TurnResult:
    """The rest of a turn for a text reply the framework's own client made with the persona
    injected: an agent with tools that answered without calling one, or answered after its tool
    results came back.

    Such a reply is the turn's persona candidate. It is refined when ``refine`` is on (the reviewers
    read the conversation, tool results included), then guarded with the pipeline's guard operation,
    exactly as a turn's answer: ``monitor`` records, ``enforce`` annotates, regenerates or blocks.
    There is no ensemble: the neutral candidate and the judge would need the tools too, and a tool
    call cannot be judged against a text. A structured (JSON) reply is left as it is, since any
    rewrite would break its format, and so is a reply that hands tool calls back to the framework
    (``Reply.final`` False): it is not the agent's answer yet.

    :param messages: the conversation the reply answers, without the persona.
    :param prepared: what :meth:`~persona_plugins.PersonaPipeline.prepare` gave the call.
    :param reply: the :class:`Reply`, or its text alone.
    :param model: the view of the framework client (without tools) for reviewers and regeneration.
    :return: the :class:`~persona_plugins.TurnResult`, after the ``on_turn_complete`` observers
        have seen it; usage and calls include the reviewers' and the guard's.
    :raises GuardrailViolation: when ``enforce`` blocks the reply.
    """
    reply = Reply(reply) if isinstance(reply, str) else reply
    turn = passed_through_turn(prepared, reply)
    text, config = reply.text, pipeline.config
    if reply.structured or not reply.final or not rewrites_replies(config) or not text.strip():
        return await pipeline.observe(turn, messages)
    counted = _Counted(model)
    update: dict[str, Any] = {}
    errors = []
    if config.refine != "off" and messages:
        refined = await pipeline.refine(messages, text, persona=prepared.persona, model=counted)
        text = refined.text
        errors += refined.errors
        update.update(refinement_plan=refined.refinement_plan, reviews=refined.reviews)
    outcome = await pipeline.guard(
        text,
        list(messages) or None,
        candidates=turn.candidates,
        persona=prepared.persona,
        model=counted,
    )
    if outcome.blocked:
        raise outcome.violation(messages)
    update.update(
        text=outcome.text,
        findings=outcome.findings,
        action=outcome.action,
        failed_detectors=outcome.failed_detectors,
        errors=[*errors, *outcome.errors],
        usage=turn.usage + counted.tally.usage,
        model_calls=turn.model_calls + counted.tally.calls,
    )
    return await pipeline.observe(turn.model_copy(update=update), messages)


class Turns:
    """The turns an adapter object runs: each through :func:`framework_errors`, the latest kept
    in ``last`` and every one's calls and tokens in ``tally``."""

    def __init__(self, pipeline: PersonaPipeline):
        self.pipeline = pipeline
        self._last: TurnResult | None = None
        self._pending: Callable[[], TurnResult] | None = None
        self.tally = Tally()

    @property
    def last(self) -> TurnResult | None:
        """The latest turn (a passed-through one is built here, when first read)."""
        if self._pending is not None:
            self._last, self._pending = self._pending(), None
        return self._last

    @last.setter
    def last(self, turn: TurnResult | None) -> None:
        self._last, self._pending = turn, None

    def record(self, turn: TurnResult) -> TurnResult:
        self.last = turn
        self.tally.add(turn.usage, turn.model_calls)
        return turn

    def passed_through(
        self,
        prepared: PreparedPrompt | Callable[[], PreparedPrompt],
        reply: Reply | str,
        *,
        started: float,
    ) -> bool:
        """Record a reply the framework's client made with the persona injected, when nothing can
        change it and no plugin waits for the turn (True); its :class:`TurnResult` is built only
        if :attr:`last` is read (and ``prepared`` with it, when it is given as a function that
        makes it). False: finish it with :meth:`finish` instead."""
        if rewrites_replies(self.pipeline.config) or self.pipeline.observed:
            return False
        reply = Reply(reply) if isinstance(reply, str) else reply
        self.tally.add(reply.usage, reply.model_calls)
        elapsed = time.perf_counter() - started

        def make() -> TurnResult:
            made = prepared if isinstance(prepared, PreparedPrompt) else prepared()
            turn = passed_through_turn(made, reply)
            turn.duration_s = elapsed
            return turn

        self._last, self._pending = None, make
        return True

    async def run(self, messages: Sequence[Message], model: ChatModel) -> TurnResult:
        """A whole pipeline turn on ``model`` (the framework client's view for this call)."""
        return self.record(await framework_errors(self.pipeline.run(messages, model=model)))

    async def finish(
        self,
        messages: Sequence[Message],
        prepared: PreparedPrompt,
        reply: Reply | str,
        **options: Any,
    ) -> TurnResult:
        """The rest of a turn the framework's own client answered (:func:`finish_reply`)."""
        finished = finish_reply(self.pipeline, messages, prepared, reply, **options)
        return self.record(await framework_errors(finished))


class TurnRecord:
    """What every adapter's wrapper tells about the turns it handled, from its :class:`Turns`
    (``self._turns``): ``last_result``, ``model_calls`` and ``usage``."""

    _turns: Turns

    @property
    def last_result(self) -> TurnResult | None:
        """The :class:`~persona_plugins.TurnResult` of the latest call."""
        return self._turns.last

    @property
    def model_calls(self) -> int:
        """Model calls made through this object so far."""
        return self._turns.tally.calls

    @property
    def usage(self) -> Usage:
        """Tokens of every model call made through this object so far."""
        return self._turns.tally.usage


# -- teams ----------------------------------------------------------------------------------------

#: What a blocked team message is rewritten to (a message is never dropped: that can hang a team).
WITHHELD_TEMPLATE = "[persona-plugins withheld this message from {speaker}: {reason}]"
#: The note a team finding adds to the message that brought it, for the next speakers to read.
TEAM_NOTE_TEMPLATE = "\n\n[persona-plugins team guard: {message}]"

_TEAM_SETTINGS = frozenset(inspect.signature(TeamMonitor).parameters) - {"task"}
_TEAM_NOTE_START = TEAM_NOTE_TEMPLATE.split("{", 1)[0]


def _without_team_notes(text: str) -> str:
    """A message as its speaker wrote it: the team notes a guard appended are taken off."""
    head, found, _ = text.partition(_TEAM_NOTE_START)
    return head if found and text.rstrip().endswith("]") else text


def _team_transcript(received: Sequence[Message], speaker: str) -> list[tuple[str, str]]:
    """The ``(speaker, text)`` transcript of the messages a member received (see
    :meth:`TeamGuard.review_reply`)."""
    transcript: list[tuple[str, str]] = []
    for message in received:
        if message.role == "user":
            transcript.append((message.name or "user", _without_team_notes(message.content)))
        elif message.role == "assistant":
            transcript.append((message.name or speaker, _without_team_notes(message.content)))
    return transcript


class TeamGuard:
    """The guardrails of a team conversation, framework-free: a framework's team hook (AutoGen's
    :class:`~persona_plugins.adapters.autogen.TeamGuardHandler`) calls :meth:`review` with each
    member's message and writes back the text it returns; a hook on one member's side (AutoGen's
    :class:`~persona_plugins.adapters.autogen.TeamGuardClient`, for runtimes with no team hook)
    calls :meth:`review_reply` with the member's reply and the conversation it received.

    Each message goes through the pipeline's guard operation with the speaker's persona
    (:meth:`~persona_plugins.PersonaPipeline.guard`: every detector, then in ``enforce`` mode the
    ``resolve_findings`` decision) and through the team checks of
    :class:`~persona_plugins.guardrails.team.TeamMonitor` (monopolization, drift from the task,
    discussion length). In ``enforce`` mode the message is *rewritten*, never dropped: the guard's
    text replaces it (a blocked one becomes a one-line notice) and team findings add a note for the
    next speakers. ``monitor`` only records; ``off`` checks nothing.

    Args:
        task: the team's task (default: set later with :meth:`set_task`).
        guard: ``enforce``, ``monitor`` or ``off``.
        guard_errors: ``open`` (default) or ``closed``: with ``enforce``, what a failure of the
            guard does to a message (see :meth:`review`) and to a detector (as in a turn).
        detectors: detectors to run on each message (default: the config default); ``[]`` runs
            the team checks only.
        personas: speaker name -> persona (object, catalog name or file).
        model: a chat model for the optional model checks and for regeneration (default: none;
            regeneration then annotates instead).
        plugin_manager, tracer_provider, meter_provider: as for the pipeline.
        **team_settings: the team checks' settings, exactly the keyword arguments of
            :class:`~persona_plugins.guardrails.team.TeamMonitor` (``max_share``, ``max_turns``,
            ...), which also holds their defaults; an unknown name is a
            :class:`~persona_plugins.ConfigError`.

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
        guard_errors: str = "open",
        detectors: list[str] | None = None,
        personas: Mapping[str, Persona | str] | None = None,
        model: ChatModel | None = None,
        plugin_manager: pluggy.PluginManager | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        **team_settings: Any,
    ):
        unknown = sorted(set(team_settings) - _TEAM_SETTINGS)
        if unknown:
            raise ConfigError(
                f"unknown team guard setting(s) {unknown}; the team checks take "
                f"{sorted(_TEAM_SETTINGS)}"
            )
        overrides: dict[str, Any] = {"guard": guard, "guard_errors": guard_errors}
        if detectors is not None:
            overrides["detectors"] = list(detectors)
        self.config = PipelineConfig.build(None, **overrides)
        self.pm = plugin_manager or get_plugin_manager()
        catalog = collect_personas(self.pm) if personas else {}
        self.personas: dict[str, Persona] = {
            name: p if isinstance(p, Persona) else resolve_persona(p, catalog)  # type: ignore[misc]
            for name, p in (personas or {}).items()
        }
        self.model: ChatModel = model if model is not None else NoModel()
        if self.config.detectors:  # a misspelt detector or option: a ConfigError here, not later
            check_names(self.config, detectors=collect_detectors(self.pm))
        self.monitor = TeamMonitor(task, **team_settings)
        self.telemetry = Telemetry(tracer_provider)
        self.metrics = PipelineMetrics(meter_provider)
        self._providers = (tracer_provider, meter_provider)
        self._pipelines: dict[str, PersonaPipeline] = {}
        self.findings: list[Finding] = []
        self.rewrites = 0

    @property
    def may_rewrite(self) -> bool:
        """True when a reviewed message may come back changed (``enforce``), so a hook that
        streams a member's reply must hold it back until :meth:`review_reply` has run."""
        return self.config.guard == "enforce"

    def set_task(self, task: str) -> None:
        """The team's task, for the drift check (the first one set stays)."""
        self.monitor.set_task(task)

    async def review(self, speaker: str, text: str) -> str:
        """Guard one member's message; return the text the team should see (``text`` itself
        when nothing is to change).

        A failure of the guard itself (a detector failing is already isolated by the guard
        operation; this is anything else) never breaks the team: it is logged, and the message
        goes through unchanged, or, with ``guard="enforce"`` and ``guard_errors="closed"``, is
        withheld with a notice (a message is never dropped: that can hang a team).
        """
        try:
            return await self._review(speaker, text)
        except ConfigError:
            raise  # the user's settings, not a failure of the guard: say so
        except Exception:
            _log.warning("the team guard could not check %s's message", speaker, exc_info=True)
            if self.config.guard == "enforce" and self.config.guard_errors == "closed":
                self.rewrites += 1
                return WITHHELD_TEMPLATE.format(
                    speaker=speaker, reason="the guardrails could not check it"
                )
            return text

    async def _review(self, speaker: str, text: str) -> str:
        if self.config.guard == "off":
            return text
        started = time.perf_counter()
        attributes = {
            semconv.GEN_AI_OPERATION_NAME: "guard",
            semconv.GEN_AI_AGENT_NAME: speaker,
            semconv.PP_GUARD: self.config.guard,
        }
        with self.telemetry.span("persona_plugins team_guard", attributes) as span:
            outcome: GuardOutcome | None = None
            if self.config.detectors:
                task = [Message.user(self.monitor.task)] if self.monitor.task else None
                outcome = await self._pipeline(speaker).guard(text, task)
            team_findings = self.monitor.add(speaker, text)
            for finding in team_findings:
                self.metrics.finding(finding.detector, finding.severity)
                span.event(semconv.GEN_AI_EVALUATION_RESULT_EVENT, finding_event(finding))
            turn = len(self.monitor.transcript)
            stamped = [
                f.model_copy(update={"metadata": {**f.metadata, "speaker": speaker, "turn": turn}})
                for f in [*(outcome.findings if outcome else []), *team_findings]
            ]
            self.findings.extend(stamped)
            span.set(semconv.PP_FINDINGS_COUNT, len(stamped))
            acted = outcome is not None and outcome.action != "allow"
            if self.config.guard != "enforce" or not (stamped or acted):
                return text
            new, action = text, "allow"
            if outcome is not None and outcome.blocked:
                reason = outcome.resolution.reason if outcome.resolution else ""
                new = WITHHELD_TEMPLATE.format(
                    speaker=speaker, reason=reason or "blocked by the guardrails"
                )
                action = "block"
            elif outcome is not None:
                new, action = outcome.text, outcome.action
            for finding in team_findings:
                new += TEAM_NOTE_TEMPLATE.format(message=finding.message)
                action = "annotate" if action == "allow" else action
            self.rewrites += new != text
            span.set(semconv.PP_ACTION, action)
            self.metrics.stage("team_guard", time.perf_counter() - started)
            return new

    async def review_reply(self, speaker: str, text: str, received: Sequence[Message]) -> str:
        """Guard a member's reply, given the conversation the member received; for a hook on the
        member's own side (a wrapper around its model client or the agent), which any runtime
        runs, distributed ones included. Return the text the team should see.

        ``received`` becomes the team transcript (:meth:`TeamMonitor.follow
        <persona_plugins.guardrails.team.TeamMonitor.follow>`): system and tool messages are
        left out; a user message counts as said by its ``name`` (``user`` when it has none), an
        assistant message by its ``name`` or else by ``speaker``; the notes a team guard appended
        to earlier messages are taken off again. The reply then goes to :meth:`review`.

        Each member holding its own guard checks the transcript it sees: a finding about the
        team (monopolization, drift, length) may come once from each member's guard.
        """
        try:
            self.monitor.follow(_team_transcript(received, speaker))
        except Exception:  # the checks go on with the transcript this guard already has
            _log.warning("the team guard could not read %s's conversation", speaker, exc_info=True)
        return await self.review(speaker, text)

    def _pipeline(self, speaker: str) -> PersonaPipeline:
        """The guard pipeline of one speaker (with that speaker's persona), made on first use."""
        if speaker not in self._pipelines:
            tracer_provider, meter_provider = self._providers
            self._pipelines[speaker] = guard_pipeline(
                persona=self.personas.get(speaker),
                config=self.config,
                model=self.model,
                plugin_manager=self.pm,
                tracer_provider=tracer_provider,
                meter_provider=meter_provider,
            )
        return self._pipelines[speaker]
