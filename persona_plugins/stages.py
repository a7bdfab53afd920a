"""How a stage runs: in its own span, timed, with a plugin's failure recorded instead of raised.

:class:`TurnContext` is what every stage function receives: the conversation, the turn's model,
the configuration, the plugin manager and the list of failures the turn recovered from. A stage
function (``selection.choose_persona``, ``candidates.produce_candidates``, ...) holds the stage's
logic; :meth:`TurnContext.stage` runs a piece of it the way every stage is run, so that the
pipeline itself only decides the order.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import pluggy

from persona_plugins import semconv
from persona_plugins.config import PipelineConfig
from persona_plugins.errors import GuardrailViolation, ModelCallError
from persona_plugins.metrics import PipelineMetrics
from persona_plugins.model import Message
from persona_plugins.results import StageError
from persona_plugins.tracing import SafeSpan, Telemetry
from persona_plugins.turn_model import TurnModel

__all__ = ["PASS_THROUGH", "TurnContext", "record_failure"]

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


@dataclass
class TurnContext:
    """Everything a stage needs about the turn (or the single operation) it is part of.

    Attributes:
        messages: the conversation as the caller passed it (no persona).
        model: the turn's model (every call traced, counted and timed).
        config: the pipeline configuration.
        pm: the plugin manager whose hooks the stages call.
        telemetry, metrics: where spans and measurements go.
        errors: failures recovered from so far, in order.
    """

    messages: list[Message]
    model: TurnModel
    config: PipelineConfig
    pm: pluggy.PluginManager
    telemetry: Telemetry
    metrics: PipelineMetrics
    errors: list[StageError] = field(default_factory=list)

    async def stage(self, name: str, body: Callable[[SafeSpan], Awaitable[T]]) -> T | None:
        """Run ``body`` as the stage ``name``: in a span of its own, timed; an exception from a
        plugin is recorded (on :attr:`errors` and the span) and the stage gives None.

        :class:`~persona_plugins.GuardrailViolation` and :class:`~persona_plugins.ModelCallError`
        pass through: they are the turn's outcome.
        """
        started = time.perf_counter()
        with self.telemetry.span(
            f"{semconv.SPAN_STAGE_PREFIX}{name}", {semconv.PP_STAGE: name}
        ) as span:
            try:
                return await body(span)
            except PASS_THROUGH:
                raise
            except Exception as exc:
                record_failure(self.errors, span, name, exc)
                return None
            finally:
                self.metrics.stage(name, time.perf_counter() - started)
