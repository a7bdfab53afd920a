"""How a stage runs: in its own span, timed, with a plugin's failure recorded instead of raised.

:class:`TurnContext` is what every stage function receives: the conversation, the turn's model,
the configuration, the plugin manager and the list of failures the turn recovered from. A stage
function (``selection.choose_persona``, ``candidates.produce_candidates``, ...) holds the stage's
logic; :meth:`TurnContext.stage` runs a piece of it the way every stage is run, so that the
pipeline itself only decides the order.

When nothing would record it (no tracer provider that records, no meter provider set), a stage
runs without its span, timing and metric, which would go nowhere; a plugin's failure is still
recorded on :attr:`TurnContext.errors`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy

from persona_plugins import semconv
from persona_plugins.config import PipelineConfig
from persona_plugins.errors import GuardrailViolation, ModelCallError
from persona_plugins.hookcalls import Hooks
from persona_plugins.metrics import PipelineMetrics
from persona_plugins.model import ChatModel, Message
from persona_plugins.results import StageError
from persona_plugins.tracing import NOT_RECORDING, SafeSpan, Telemetry
from persona_plugins.turn_model import TurnModel

if TYPE_CHECKING:
    from persona_plugins.persona import Persona
    from persona_plugins.pipeline import PersonaPipeline

__all__ = ["PASS_THROUGH", "Once", "TurnContext", "record_failure"]

T = TypeVar("T")

#: Exceptions a stage never swallows: they are the turn's outcome, not a plugin's failure.
PASS_THROUGH: tuple[type[BaseException], ...] = (GuardrailViolation, ModelCallError)


def record_failure(
    errors: list[StageError],
    span: SafeSpan,
    stage: str,
    exc: BaseException,
    *,
    plugin: str | None = None,
) -> None:
    """Record a plugin's exception on the turn's errors and on the stage span."""
    errors.append(
        StageError(
            stage=stage, error=str(exc) or repr(exc), error_type=type(exc).__name__, plugin=plugin
        )
    )
    span.error(exc)
    span.event(
        semconv.PP_STAGE_ERROR_EVENT,
        {
            semconv.PP_STAGE: stage,
            semconv.ERROR_TYPE: type(exc).__name__,
            semconv.PP_PLUGIN: plugin,
        },
    )


class Once:
    """Work that does not change between a pipeline's turns, done once and reused.

    A stage keeps one value per slot, with the key it was made from (what it depends on);
    :meth:`get` gives it back while the key is unchanged (compared with ``==``, which is an
    identity check first) and makes a new one when it changes: a static persona's system prompt
    is rendered once per pipeline, and again only if the persona or the template changes.
    """

    __slots__ = ("_slots",)

    def __init__(self) -> None:
        self._slots: dict[str, tuple[Any, Any]] = {}

    def get(self, slot: str, key: Any, make: Callable[[], T]) -> T:
        """The value held in ``slot`` for ``key``; made with ``make()`` when there is none."""
        held = self._slots.get(slot)
        if held is not None and held[0] == key:
            value: T = held[1]
            return value
        value = make()
        self._slots[slot] = (key, value)
        return value


_STAGE_SPANS: dict[str, tuple[str, dict[str, Any]]] = {}
_STAGE_SPANS_KEPT = 64  # stage names are a handful; one made up per call is not kept


def _stage_span(stage: str) -> tuple[str, dict[str, Any]]:
    """The name and starting attributes of ``stage``'s span, made once per stage name (the
    attributes are copied when a span starts, never changed)."""
    made = _STAGE_SPANS.get(stage)
    if made is None:
        made = (f"{semconv.SPAN_STAGE_PREFIX}{stage}", {semconv.PP_STAGE: stage})
        if len(_STAGE_SPANS) < _STAGE_SPANS_KEPT:
            _STAGE_SPANS[stage] = made
    return made


@dataclass
class TurnContext:
    """Everything a stage needs about the turn (or the single operation) it is part of.

    Attributes:
        messages: the conversation as the caller passed it (no persona).
        model: the turn's model (every call traced, counted and timed).
        config: the pipeline configuration.
        pm: the plugin manager whose hooks the stages call.
        telemetry, metrics: where spans and measurements go.
        hooks: how the stages call ``pm``'s hooks (:class:`~persona_plugins.hookcalls.Hooks`,
            one per pipeline).
        once: what the pipeline's turns reuse (:class:`Once`, one per pipeline).
        measured: whether measurements are recorded this turn (a meter provider is set).
        errors: failures recovered from so far, in order.
    """

    messages: list[Message]
    model: TurnModel
    config: PipelineConfig
    pm: pluggy.PluginManager
    telemetry: Telemetry
    metrics: PipelineMetrics
    hooks: Hooks
    once: Once
    measured: bool
    errors: list[StageError] = field(default_factory=list)

    @classmethod
    def start(
        cls,
        pipeline: PersonaPipeline,
        messages: list[Message],
        model: ChatModel | None = None,
        config: PipelineConfig | None = None,
    ) -> TurnContext:
        """The context of one turn (or single operation) of ``pipeline``, on its model (or
        ``model``, for this turn only) and its configuration (or ``config``)."""
        config = config or pipeline.config
        measured = pipeline.metrics.enabled
        turn_model = TurnModel(
            model if model is not None else pipeline.model,
            pipeline.telemetry,
            settings=config.model_settings,
            timeout_s=config.timeout_s,
            metrics=pipeline.metrics if measured else None,
        )
        return cls(
            messages,
            turn_model,
            config,
            pipeline.pm,
            pipeline.telemetry,
            pipeline.metrics,
            pipeline.hooks,
            pipeline.once,
            measured,
        )

    def hook_arguments(self, persona: Persona | None, **more: Any) -> dict[str, Any]:
        """The arguments a turn's hooks are called with: the conversation, the persona, the
        configuration and the model, then ``more`` (each implementation takes those it names)."""
        return {
            "messages": self.messages,
            "persona": persona,
            "config": self.config,
            "model": self.model,
            **more,
        }

    def observed(self) -> bool:
        """True when a stage leaves a trace: its span records, or its duration is measured."""
        return self.measured or self.telemetry.recording()

    async def stage(self, name: str, body: Callable[[SafeSpan], Awaitable[T]]) -> T | None:
        """Run ``body`` as the stage ``name``: in a span of its own, timed; an exception from a
        plugin is recorded (on :attr:`errors` and the span) and the stage gives None.

        :class:`~persona_plugins.GuardrailViolation` and :class:`~persona_plugins.ModelCallError`
        pass through: they are the turn's outcome.
        """
        if not self.observed():  # no span, no measurement: only the failure handling is left
            return await self._isolated(name, body, NOT_RECORDING)
        span_name, attributes = _stage_span(name)
        if not self.measured:  # traced only: the span's own timestamps time it
            with self.telemetry.span(span_name, attributes) as span:
                return await self._isolated(name, body, span)
        started = time.perf_counter()
        with self.telemetry.span(span_name, attributes) as span:
            try:
                return await self._isolated(name, body, span)
            finally:
                self.metrics.stage(name, time.perf_counter() - started)

    async def _isolated(
        self, name: str, body: Callable[[SafeSpan], Awaitable[T]], span: SafeSpan
    ) -> T | None:
        """``body(span)``, with a plugin's exception recorded (on :attr:`errors` and ``span``)
        instead of raised."""
        try:
            return await body(span)
        except PASS_THROUGH:
            raise
        except Exception as exc:
            record_failure(self.errors, span, name, exc)
            return None
