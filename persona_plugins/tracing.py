"""OpenTelemetry spans for the pipeline, through ``opentelemetry-api`` only.

Spans are no-ops until the application installs an SDK tracer provider (see
``persona_plugins.integrations.opentelemetry.configure_tracing``). Instrumentation never raises into
user code: every call into OpenTelemetry is guarded, and the user's own exceptions pass through
unchanged after being recorded on the span. Message and persona text is recorded only when
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from contextvars import ContextVar
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, TracerProvider

from persona_plugins import semconv

if TYPE_CHECKING:
    from persona_plugins.config import PipelineConfig
    from persona_plugins.model import Usage
    from persona_plugins.persona import Persona
    from persona_plugins.results import (
        Finding,
        Judgement,
        RefinementPlan,
        Review,
        TurnResult,
        Verdict,
    )

__all__ = [
    "NOT_RECORDING",
    "TRACE_HOOKS_ENV",
    "Explanation",
    "SafeSpan",
    "Telemetry",
    "capture_content_enabled",
    "enable_hook_tracing",
    "finding_event",
    "judgement_attributes",
    "recording_scope",
    "refinement_plan_attributes",
    "review_attributes",
    "reviewer_attributes",
    "turn_attributes",
    "turn_outcome_attributes",
    "turn_result_attributes",
    "verdict_event",
]

_log = logging.getLogger(__name__)
AttributeValue = str | bool | int | float | Sequence[str] | Sequence[int] | Sequence[float]


def capture_content_enabled() -> bool:
    """True when the user opted in to recording message text on spans."""
    value = os.environ.get(semconv.CAPTURE_CONTENT_ENV, "")
    return value.strip().lower() in {"1", "true", "yes", "on"}


_SCALARS = frozenset({str, bool, int, float})


class Explanation(NamedTuple):
    """An evaluation's explanation: the full ``text`` (which may quote the persona, the reply or
    a reviewer's feedback) is recorded only when content capture is on; otherwise ``redacted``,
    which names only the detector or reviewer, its rule and lengths or offsets."""

    text: str
    redacted: str


def _clean(
    attributes: Mapping[str, Any] | None, capture: bool = False
) -> dict[str, AttributeValue]:
    clean: dict[str, AttributeValue] = {}
    if not attributes:
        return clean
    for key, value in attributes.items():
        if value is None:
            continue
        if type(value) in _SCALARS:
            clean[key] = value
        elif type(value) is Explanation:
            clean[key] = value.text if capture else value.redacted
        elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            clean[key] = list(value)
        else:
            clean[key] = str(value)
    return clean


def genai_messages(messages: Sequence[Any]) -> list[dict[str, Any]]:
    """Messages in the GenAI conventions' shape: ``{"role", "parts": [{"type": "text", ...}]}``
    (what Phoenix and Langfuse read into their input and output panels)."""
    out: list[dict[str, Any]] = []
    for message in messages:
        entry: dict[str, Any] = {
            "role": message.role,
            "parts": [{"type": "text", "content": message.content}],
        }
        if getattr(message, "name", None):
            entry["name"] = message.name
        out.append(entry)
    return out


def genai_output(text: str, finish_reason: str | None = None) -> list[dict[str, Any]]:
    """One assistant reply in the GenAI output-messages shape."""
    entry: dict[str, Any] = {"role": "assistant", "parts": [{"type": "text", "content": text}]}
    if finish_reason:
        entry["finish_reason"] = finish_reason
    return [entry]


def genai_instructions(text: str) -> list[dict[str, str]]:
    """System instructions in the GenAI shape (a list of text parts)."""
    return [{"type": "text", "content": text}]


# -- what each result looks like on a span -------------------------------------------------------


def turn_attributes(config: PipelineConfig, model_name: str) -> dict[str, Any]:
    """The attributes a turn span starts with: the operation, the model and the configuration."""
    return {
        semconv.GEN_AI_OPERATION_NAME: semconv.OP_INVOKE_WORKFLOW,
        semconv.GEN_AI_REQUEST_MODEL: model_name,
        semconv.PP_PERSONA_MODE: config.persona_mode,
        semconv.PP_ENSEMBLE: config.ensemble,
        semconv.PP_REFINE: config.refine,
        semconv.PP_GUARD: config.guard,
    }


def turn_result_attributes(result: TurnResult) -> dict[str, Any]:
    """What a finished turn adds to its span: persona, chosen candidate, cost and guard outcome."""
    return turn_outcome_attributes(
        result.persona,
        result.persona_source,
        result.chosen,
        result.model_calls,
        result.usage,
        len(result.findings),
        result.action,
    )


def turn_outcome_attributes(
    persona: Persona | None,
    persona_source: str | None,
    chosen: str | None,
    model_calls: int,
    usage: Usage,
    findings: int = 0,
    action: str = "allow",
) -> dict[str, Any]:
    """:func:`turn_result_attributes` from the parts of a turn, for a turn whose
    :class:`~persona_plugins.TurnResult` is not built (a call passed straight through)."""
    name = persona.name if persona else None
    return {
        semconv.GEN_AI_AGENT_NAME: name,
        semconv.PP_PERSONA_NAME: name,
        semconv.PP_PERSONA_SOURCE: persona_source,
        semconv.PP_CHOSEN: chosen,
        semconv.PP_MODEL_CALLS: model_calls,
        semconv.GEN_AI_USAGE_INPUT_TOKENS: usage.input_tokens,
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: usage.output_tokens,
        semconv.PP_FINDINGS_COUNT: findings,
        semconv.PP_ACTION: action,
    }


def _evaluation(
    name: str, label: Any, value: Any, explanation: str | Explanation | None
) -> dict[str, Any]:
    """A GenAI evaluation result: its name, score label and value, and explanation (if any)."""
    attributes = {
        semconv.GEN_AI_EVALUATION_NAME: name,
        semconv.GEN_AI_EVALUATION_SCORE_LABEL: label,
        semconv.GEN_AI_EVALUATION_SCORE_VALUE: value,
    }
    if explanation is not None:
        attributes[semconv.GEN_AI_EVALUATION_EXPLANATION] = explanation
    return attributes


def judgement_attributes(judgement: Judgement) -> dict[str, Any]:
    """A judge's decision as a GenAI evaluation on the judge stage's span."""
    return {
        **_evaluation(
            "judge",
            judgement.chosen,
            1.0 if judgement.consistent else 0.0,
            # the reason may quote the agreed answer: with capture off, only what was decided
            Explanation(
                judgement.reason,
                f"chosen={judgement.chosen}; consistent={judgement.consistent}; "
                f"fallback={judgement.fallback}; calls={judgement.model_calls}",
            ),
        ),
        semconv.PP_CHOSEN: judgement.chosen,
        semconv.PP_JUDGE_CONSISTENT: judgement.consistent,
        semconv.PP_JUDGE_FALLBACK: judgement.fallback,
        semconv.PP_JUDGE_CALLS: judgement.model_calls,
    }


def verdict_event(verdict: Verdict) -> dict[str, Any]:
    """One judge call (one order of the candidates) as a ``gen_ai.evaluation.result`` event."""
    return {
        **_evaluation("judge_verdict", verdict.choice or "unreadable", verdict.certainty, None),
        semconv.PP_JUDGE_ORDER: list(verdict.order),
        semconv.PP_JUDGE_ATTEMPT: verdict.attempt,
    }


#: Finding metadata that names a rule, never content: kept in redacted explanations.
_RULE_KEYS = ("kind", "category", "reason", "rule", "start", "end")


def finding_event(finding: Finding) -> dict[str, Any]:
    """A guardrail finding as a ``gen_ai.evaluation.result`` event (its message, which may quote
    the persona or the response, only with content capture on)."""
    parts = [f"detector={finding.detector}"]
    for key in _RULE_KEYS:
        value = finding.metadata.get(key)
        if isinstance(value, (int, float)) or (isinstance(value, str) and len(value) <= 40):
            parts.append(f"{key}={value}")
    if finding.evidence:
        parts.append(f"evidence_length={len(finding.evidence)}")
    explanation = Explanation(finding.message, "; ".join(parts))
    return _evaluation(finding.detector, finding.severity, finding.score, explanation)


def refinement_plan_attributes(plan: RefinementPlan) -> dict[str, Any]:
    """The refinement plan on the refine stage's span."""
    return {
        semconv.PP_REFINE_PLAN: list(plan.refiners),
        semconv.PP_REFINE_PLAN_SOURCE: plan.source,
        semconv.PP_REFINE_PARALLEL: plan.parallel,
    }


def reviewer_attributes(agent: str, description: str | None, round_no: int) -> dict[str, Any]:
    """The attributes a reviewer's ``invoke_agent`` span starts with."""
    return {
        semconv.GEN_AI_OPERATION_NAME: semconv.OP_INVOKE_AGENT,
        semconv.GEN_AI_AGENT_NAME: agent,
        semconv.GEN_AI_AGENT_DESCRIPTION: description,
        semconv.PP_REFINE_ROUND: round_no,
    }


def review_attributes(refiner: str, review: Review) -> dict[str, Any]:
    """A reviewer's verdict as a GenAI evaluation on its span."""
    return {
        semconv.GEN_AI_EVALUATION_NAME: refiner,
        semconv.GEN_AI_EVALUATION_SCORE_LABEL: review_verdict(review),
        semconv.GEN_AI_EVALUATION_EXPLANATION: _review_explanation(refiner, review),
    }


def _review_explanation(refiner: str, review: Review) -> Explanation | None:
    text = review.feedback or review.error
    if not text:
        return None
    if review.error:  # "TimeoutError: ...", "unreadable review (...): '<the reply>'": the kind
        redacted = f"refiner={refiner}; error={review.error.split(':')[0][:60]}"
    else:
        redacted = f"refiner={refiner}; feedback_length={len(review.feedback)}"
    return Explanation(text, redacted)


def review_verdict(review: Review) -> str:
    """``error``, ``revise`` or ``ok``: a review in one word, for spans and metrics."""
    return "error" if review.error else "revise" if review.needs_change else "ok"


class SafeSpan:
    """A span whose methods never raise."""

    def __init__(self, span: Span, capture_content: bool, recording: bool = True):
        self._span = span
        self.capture_content = capture_content
        self.recording = recording
        self._ended = False  # end() was called (a span from Telemetry.start)

    @property
    def span(self) -> Span:
        return self._span

    def set(self, key: str, value: Any) -> None:
        if value is None or not self.recording:
            return
        try:
            if type(value) in _SCALARS:  # nothing to convert
                self._span.set_attribute(key, value)
            else:
                self._span.set_attributes(_clean({key: value}, self.capture_content))
        except Exception:  # instrumentation must never raise
            _log.debug("could not set span attribute %s", key, exc_info=True)

    def set_many(self, attributes: Mapping[str, Any]) -> None:
        if not self.recording:
            return
        try:
            self._span.set_attributes(_clean(attributes, self.capture_content))
        except Exception:
            _log.debug("could not set span attributes", exc_info=True)

    def set_content(self, key: str, value: Any) -> None:
        """Record message or persona text, only when content capture is on.

        ``value`` may be a zero-argument callable, called only when the text is recorded, so that
        building it costs nothing when capture is off.
        """
        if not self.capture_content or value is None:
            return
        if callable(value):
            value = value()
        if not isinstance(value, str):
            try:
                value = json.dumps(value, ensure_ascii=False, default=str)
            except Exception:
                value = str(value)
        self.set(key, value)

    def event(self, name: str, attributes: Mapping[str, Any] | None = None) -> None:
        if not self.recording:
            return
        try:
            self._span.add_event(name, _clean(attributes, self.capture_content))
        except Exception:
            _log.debug("could not add span event %s", name, exc_info=True)

    def current(self) -> AbstractContextManager[None]:
        """Make this span the current one for a block (one with no ``yield`` in it): for a span
        started with :meth:`Telemetry.start`, which lives across the yields of a stream."""
        return _Current(self._span) if self.recording else nullcontext()

    def end(self) -> None:
        """End a span started with :meth:`Telemetry.start` (again: nothing)."""
        if not self.recording or self._ended:
            return
        self._ended = True
        try:
            self._span.end()
        except Exception:
            _log.debug("could not end a span", exc_info=True)

    def error(self, exc: BaseException) -> None:
        if not self.recording or self._ended:
            return
        try:
            kind = type(exc).__qualname__
            if self.capture_content:
                self._span.record_exception(exc)
                self._span.set_status(
                    Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:300])
                )
            else:  # an exception's message (and its traceback's last line) may quote the prompt
                self._span.add_event("exception", {"exception.type": kind})
                self._span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            self._span.set_attribute(semconv.ERROR_TYPE, kind)
        except Exception:
            _log.debug("could not record an error on a span", exc_info=True)


class _Current:
    """A span made current for one block, and no longer after it."""

    __slots__ = ("_span", "_token")

    def __init__(self, span: Span):
        self._span = span
        self._token: object = None

    def __enter__(self) -> None:
        self._token = _attached(self._span)

    def __exit__(self, *exc_info: object) -> None:
        _detach(self._token)


def _attached(span: Span) -> object:
    """The token of ``span`` made current (None when it could not be)."""
    try:
        return otel_context.attach(trace.set_span_in_context(span))
    except Exception:
        _log.debug("could not attach span context", exc_info=True)
        return None


def _detach(token: object) -> None:
    if token is not None:
        try:
            otel_context.detach(token)  # type: ignore[arg-type]
        except Exception:
            _log.debug("could not detach span context", exc_info=True)


def _started(
    tracer: Tracer, name: str, attributes: Attributes, kind: SpanKind = SpanKind.INTERNAL
) -> tuple[Span, bool]:
    """A span started with ``attributes`` (or what calling them gives), and whether it records;
    an invalid, non-recording span when the tracer fails."""
    try:
        values = attributes() if callable(attributes) else attributes
        span: Span = tracer.start_span(name, kind=kind, attributes=_clean(values))
        return span, span.is_recording()
    except Exception:
        _log.debug("could not start span %s", name, exc_info=True)
        return trace.INVALID_SPAN, False


_RECORDING: ContextVar[bool] = ContextVar("persona_plugins_recording", default=True)

#: The span of a stage whose span would not record: every method does nothing.
NOT_RECORDING = SafeSpan(trace.INVALID_SPAN, capture_content=False, recording=False)
_NOT_RECORDING: AbstractContextManager[SafeSpan] = nullcontext(NOT_RECORDING)


class recording_scope:  # a class, not a generator: entered on every turn
    """Within this scope (and the tasks it starts), skip spans when ``recording`` is False.

    The pipeline enters it with its turn span's ``is_recording()``: when the turn itself is not
    recorded, nothing below it would be either, so tracing that is off costs next to nothing.
    """

    __slots__ = ("_recording", "_token")

    def __init__(self, recording: bool):
        self._recording = recording

    def __enter__(self) -> None:
        self._token = _RECORDING.set(self._recording)

    def __exit__(self, *exc_info: object) -> None:
        _RECORDING.reset(self._token)


Attributes = Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None


class _SpanScope(SafeSpan):
    """One span: started, made current, ended; exceptions recorded on it and re-raised. The
    scope is also the span's :class:`SafeSpan` (one object per span, not two)."""

    def __init__(self, telemetry: Telemetry, name: str, attributes: Attributes, kind: SpanKind):
        self._telemetry = telemetry
        self._name = name
        self._attributes = attributes
        self._kind = kind

    def __enter__(self) -> SafeSpan:
        span, recording = _started(
            self._telemetry._tracer, self._name, self._attributes, self._kind
        )
        self._span = span
        self._token = _attached(span) if recording else None
        self.capture_content = self._telemetry.capture_content and recording
        self.recording = recording
        self._ended = False
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is not None:
            self.error(exc)
        _detach(self._token)
        try:
            self._span.end()
        except Exception:
            _log.debug("could not end span %s", self._name, exc_info=True)


_NOT_THERE = object()
_PROVIDER_FROM_ENV = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ


def read_global_provider(module: Any, name: str, from_env: bool, get: Callable[[], Any]) -> Any:
    """An OpenTelemetry global provider (tracer or meter) without the environment lookup ``get()``
    makes on every call (asked on every turn while none is set): ``module.name`` read directly,
    None while none is set, when OpenTelemetry keeps it there and the environment names no
    provider (``from_env``); otherwise ``get()``."""
    provider = getattr(module, name, _NOT_THERE)
    if provider is _NOT_THERE or (provider is None and from_env):
        return get()
    return provider


def _global_tracer_provider() -> TracerProvider:
    """``trace.get_tracer_provider()``, read as :func:`read_global_provider` does (a proxy while
    none is set)."""
    provider = read_global_provider(
        trace, "_TRACER_PROVIDER", _PROVIDER_FROM_ENV, trace.get_tracer_provider
    )
    return cast(TracerProvider, provider) if provider is not None else _UNSET_PROVIDER


#: The global provider can be read directly: OpenTelemetry keeps it where this version does, and
#: the environment names no provider (which ``get_tracer_provider()`` would load on first use).
_GLOBAL_READABLE = hasattr(trace, "_TRACER_PROVIDER") and not _PROVIDER_FROM_ENV
#: Stands for "no global provider yet" (a proxy provider: nothing records; never used for spans).
_UNSET_PROVIDER = trace.ProxyTracerProvider()


class Telemetry:
    """Creates the pipeline's spans on the given tracer provider (the global one by default)."""

    def __init__(self, tracer_provider: TracerProvider | None = None):
        from persona_plugins import __version__

        self.capture_content = capture_content_enabled()
        self._provider = tracer_provider
        self._settled = False  # a provider that records has been seen (it cannot go away)
        try:
            self._tracer = trace.get_tracer(
                "persona_plugins", __version__, tracer_provider=tracer_provider
            )
        except Exception:  # pragma: no cover - a broken provider
            _log.debug("falling back to a no-op tracer", exc_info=True)
            self._tracer = trace.NoOpTracer()

    def may_record(self) -> bool:
        """False when no span of this telemetry can record: the provider is OpenTelemetry's
        no-op one, or the global one while no SDK provider has been set (spans then start
        recording as soon as the application sets one)."""
        if self._settled:
            return True
        provider = self._provider
        if provider is None and _GLOBAL_READABLE and trace._TRACER_PROVIDER is None:
            return False  # the usual "tracing off" (no provider set yet): two reads
        if provider is None or isinstance(provider, trace.ProxyTracerProvider):
            provider = _global_tracer_provider()
        may = not isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider))
        # OpenTelemetry sets the global provider once for good: a real one, once seen, stays.
        self._settled = may
        return may

    def recording(self) -> bool:
        """True when a span opened here now would record (as far as can be told before starting
        it: a sampler may still drop it)."""
        return _RECORDING.get() and self.may_record()

    def span(
        self,
        name: str,
        attributes: Attributes = None,
        kind: SpanKind = SpanKind.INTERNAL,
    ) -> AbstractContextManager[SafeSpan]:
        """Open a span, make it current, end it; record (and re-raise) exceptions unchanged.

        ``attributes`` may be a zero-argument callable, called only when a span is started.
        Inside a turn whose own span does not record (no SDK installed, or sampled out), the
        stage and model-call spans of that turn are skipped outright: see :class:`recording_scope`.
        With no SDK installed (or a sampler that drops the span) the span does not record: then
        nothing is converted or attached, so tracing that is off costs next to nothing, and a
        non-recording span never hides the caller's own current span from other instrumentation.
        """
        if not (_RECORDING.get() and (self._settled or self.may_record())):  # self.recording()
            return _NOT_RECORDING
        return _SpanScope(self, name, attributes, kind)

    def start(self, name: str, attributes: Attributes = None) -> SafeSpan:
        """A span started as a child of the current one but not made current, for work that
        spans the yields of a stream (a span made current across a ``yield`` would become the
        parent of the consumer's own spans): make it current around each step with
        :meth:`SafeSpan.current`, and :meth:`SafeSpan.end` it."""
        if not self.recording():
            return NOT_RECORDING
        span, recording = _started(self._tracer, name, attributes)
        return SafeSpan(span, self.capture_content and recording, recording)


TRACE_HOOKS_ENV = "PERSONA_PLUGINS_TRACE_HOOKS"
_hook_traced: weakref.WeakSet[Any] = weakref.WeakSet()
_hook_stack = threading.local()


def hook_tracing_requested() -> bool:
    """True when ``PERSONA_PLUGINS_TRACE_HOOKS`` asks for one span per hook call."""
    return os.environ.get(TRACE_HOOKS_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def enable_hook_tracing(pm: Any, telemetry: Telemetry) -> bool:
    """Add a span around every hook call of ``pm``, naming the plugins it called, in order.

    Done once per plugin manager (the first pipeline's tracer provider is used). Returns False when
    it was already enabled.
    """
    if pm in _hook_traced:
        return False
    _hook_traced.add(pm)

    def before(hook_name: str, hook_impls: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        stack = _hook_stack.__dict__.setdefault("items", [])
        # pluggy calls implementations from the end of the list to the start
        plugins = [impl.plugin_name for impl in reversed(hook_impls)]
        manager = telemetry.span(
            f"persona_plugins.hook {hook_name}",
            {semconv.PP_HOOK: hook_name, semconv.PP_PLUGIN: plugins},
        )
        try:
            span = manager.__enter__()
        except Exception:  # tracing never breaks a hook call
            stack.append(None)
            return
        stack.append((manager, span))

    def after(outcome: Any, hook_name: str, hook_impls: Sequence[Any], kwargs: Any) -> None:
        stack = _hook_stack.__dict__.setdefault("items", [])
        entry = stack.pop() if stack else None
        if entry is None:
            return
        manager, span = entry
        try:
            exc = outcome.exception
            if exc is None:
                result = outcome.get_result()
                span.set("persona_plugins.hook.result", type(result).__name__)
                manager.__exit__(None, None, None)
            else:
                manager.__exit__(type(exc), exc, exc.__traceback__)
        except BaseException:
            _log.debug("could not close the span of hook %s", hook_name, exc_info=True)

    pm.add_hookcall_monitoring(before, after)
    return True
