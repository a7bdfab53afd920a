"""OpenTelemetry metrics for the pipeline, through ``opentelemetry-api`` only.

Instruments (no-ops until the application installs an SDK meter provider, for example with
``persona_plugins.integrations.opentelemetry.configure_metrics``):

- ``gen_ai.client.operation.duration`` (histogram, s): each model call, by
  ``gen_ai.operation.name``, ``gen_ai.request.model`` and ``error.type``;
- ``gen_ai.client.token.usage`` (histogram, {token}): by ``gen_ai.token.type`` (input, output);
- ``persona_plugins.model_calls`` (counter): by ``gen_ai.agent.name`` and model;
- ``persona_plugins.stage.duration`` (histogram, s): by ``persona_plugins.stage``;
- ``persona_plugins.judge.decisions`` (counter): by ``consistent``, ``fallback``, ``judged``;
- ``persona_plugins.guard.findings`` (counter): by ``detector`` and ``severity``;
- ``persona_plugins.refine.rounds`` (histogram): rounds per refined turn, by strategy;
- ``persona_plugins.refine.reviews`` (counter): by ``refiner`` and ``verdict``.

Recording never raises into user code, and costs nothing when it would go nowhere: with no meter
provider given and none set globally (OpenTelemetry's proxy stands in), or with the no-op one,
nothing is recorded (measurements start as soon as the application sets a provider).
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Mapping
from typing import Any, cast

from opentelemetry import metrics
from opentelemetry.metrics import MeterProvider, NoOpMeterProvider

from persona_plugins import semconv
from persona_plugins.tracing import read_global_provider

__all__ = ["PipelineMetrics"]

_log = logging.getLogger(__name__)


class _Instruments:
    """The instruments of one meter provider (created once per provider, then shared)."""

    def __init__(self, meter_provider: MeterProvider | None):
        from persona_plugins import __version__

        try:
            meter = metrics.get_meter("persona_plugins", __version__, meter_provider=meter_provider)
            self.operation_duration = meter.create_histogram(
                semconv.METRIC_OPERATION_DURATION, unit="s", description="Duration of model calls"
            )
            self.token_usage = meter.create_histogram(
                semconv.METRIC_TOKEN_USAGE, unit="{token}", description="Tokens per model call"
            )
            self.model_calls = meter.create_counter(
                "persona_plugins.model_calls", unit="{call}", description="Model calls made"
            )
            self.stage_duration = meter.create_histogram(
                "persona_plugins.stage.duration", unit="s", description="Duration of each stage"
            )
            self.judge_decisions = meter.create_counter(
                "persona_plugins.judge.decisions",
                unit="{decision}",
                description="Judge decisions, by consistency and fallback",
            )
            self.guard_findings = meter.create_counter(
                "persona_plugins.guard.findings",
                unit="{finding}",
                description="Guardrail findings, by detector",
            )
            self.refine_rounds = meter.create_histogram(
                "persona_plugins.refine.rounds", unit="{round}", description="Refinement rounds"
            )
            self.refine_reviews = meter.create_counter(
                "persona_plugins.refine.reviews", unit="{review}", description="Reviews, by verdict"
            )
            self.enabled = True
        except Exception:  # a broken meter provider never breaks a turn
            _log.debug("metrics disabled", exc_info=True)
            self.enabled = False


# Instruments by meter provider. Creating them per pipeline would pile up: with no provider set,
# OpenTelemetry's global proxy keeps every meter and instrument ever created.
_by_provider: weakref.WeakKeyDictionary[MeterProvider, _Instruments] = weakref.WeakKeyDictionary()
_global: list[_Instruments] = []
_lock = threading.Lock()

_Proxy: type | None = None
_state: Any = None  # the module holding OpenTelemetry's global meter provider
try:  # the provider OpenTelemetry hands out while none is set (not exported by the API)
    from opentelemetry.metrics import _internal as _state
    from opentelemetry.metrics._internal import _ProxyMeterProvider

    _Proxy = _ProxyMeterProvider
except ImportError:  # pragma: no cover - another layout of opentelemetry-api
    pass
_PROVIDER_FROM_ENV = "OTEL_PYTHON_METER_PROVIDER" in os.environ
#: The global provider can be read straight from OpenTelemetry's module (None while none is set).
_GLOBAL_READABLE = hasattr(_state, "_METER_PROVIDER") and not _PROVIDER_FROM_ENV


def _global_meter_provider() -> MeterProvider | None:
    """``metrics.get_meter_provider()``, read as
    :func:`~persona_plugins.tracing.read_global_provider` does (None while none is set)."""
    provider = read_global_provider(
        _state, "_METER_PROVIDER", _PROVIDER_FROM_ENV, metrics.get_meter_provider
    )
    return cast("MeterProvider | None", provider)


def _unset(provider: object) -> bool:
    """True for OpenTelemetry's stand-in provider, the one used while none is set."""
    if _Proxy is not None:
        return isinstance(provider, _Proxy)
    return type(provider).__name__ == "_ProxyMeterProvider"  # pragma: no cover


def _instruments_for(meter_provider: MeterProvider | None) -> _Instruments:
    with _lock:
        if meter_provider is None:
            if not _global:
                _global.append(_Instruments(None))
            return _global[0]
        try:
            found = _by_provider.get(meter_provider)
            if found is None:
                found = _by_provider[meter_provider] = _Instruments(meter_provider)
            return found
        except TypeError:  # a provider that cannot be weakly referenced or hashed
            return _Instruments(meter_provider)


class PipelineMetrics:
    """The pipeline's instruments on one meter provider (the global one by default).

    Instruments are created once per meter provider and shared by every pipeline on it.
    :attr:`enabled` says whether a measurement would go anywhere; when it would not, nothing is
    recorded.
    """

    def __init__(self, meter_provider: MeterProvider | None = None):
        self._instruments = _instruments_for(meter_provider)
        self._provider = meter_provider
        self._settled = False  # a provider that records has been seen (it cannot go away)
        # on the global provider, read where OpenTelemetry keeps it: "none set yet" is one read
        self._global_only = meter_provider is None and _GLOBAL_READABLE

    @property
    def enabled(self) -> bool:
        """True when measurements go somewhere: the instruments exist and the meter provider
        (the given one, else the global one) is not OpenTelemetry's no-op or unset proxy."""
        if self._settled:
            return True
        if self._global_only and _state._METER_PROVIDER is None:
            return False  # the usual "metrics off" (no provider set yet), asked on every call
        if not self._instruments.enabled:
            return False
        provider: MeterProvider | None = self._provider
        if provider is None or _unset(provider):
            provider = _global_meter_provider()
        enabled = not (
            provider is None or _unset(provider) or isinstance(provider, NoOpMeterProvider)
        )
        # OpenTelemetry sets the global provider once for good: a real one, once seen, stays.
        self._settled = enabled
        return enabled

    def _record(self, instrument: str, value: float, attributes: Mapping[str, Any]) -> None:
        try:
            target = getattr(self._instruments, instrument)
            clean = {k: v for k, v in attributes.items() if v is not None}
            if hasattr(target, "add"):
                target.add(value, clean)
            else:
                target.record(value, clean)
        except Exception:
            _log.debug("could not record metric %s", instrument, exc_info=True)

    def model_call(
        self,
        *,
        model: str,
        agent: str | None,
        seconds: float,
        input_tokens: int,
        output_tokens: int,
        error: str | None = None,
    ) -> None:
        if not self.enabled:
            return
        base = {semconv.GEN_AI_OPERATION_NAME: semconv.OP_CHAT, semconv.GEN_AI_REQUEST_MODEL: model}
        self._record("operation_duration", seconds, {**base, semconv.ERROR_TYPE: error})
        self._record("model_calls", 1, {**base, semconv.GEN_AI_AGENT_NAME: agent})
        if error is None:
            self._record("token_usage", input_tokens, {**base, semconv.GEN_AI_TOKEN_TYPE: "input"})
            self._record(
                "token_usage", output_tokens, {**base, semconv.GEN_AI_TOKEN_TYPE: "output"}
            )

    def stage(self, name: str, seconds: float) -> None:
        if not self.enabled:
            return
        self._record("stage_duration", seconds, {semconv.PP_STAGE: name})

    def judge(self, *, consistent: bool, fallback: bool, judged: bool) -> None:
        if not self.enabled:
            return
        self._record(
            "judge_decisions",
            1,
            {"consistent": consistent, "fallback": fallback, "judged": judged},
        )

    def finding(self, detector: str, severity: str) -> None:
        if not self.enabled:
            return
        self._record("guard_findings", 1, {"detector": detector, "severity": severity})

    def refinement(self, strategy: str, rounds: int, reviews: list[tuple[str, str]]) -> None:
        if not self.enabled:
            return
        self._record("refine_rounds", rounds, {semconv.PP_REFINE: strategy})
        for refiner, verdict in reviews:
            self._record("refine_reviews", 1, {"refiner": refiner, "verdict": verdict})
