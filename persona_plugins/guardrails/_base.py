"""What every built-in detector shares: reading its entry in ``config.detectors``
(:func:`detector_options`, owned by the guard stage), a ``detect`` that never raises, and a
stand-in for a missing model."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from persona_plugins.guard import detector_options
from persona_plugins.model import Completion, Message
from persona_plugins.results import Finding

__all__ = [
    "NoModel",
    "detector_options",
    "guarded",
]

_log = logging.getLogger("persona_plugins.guardrails")


def guarded(name: str, detect: Callable[[], list[Finding]]) -> list[Finding]:
    """Run a detector for a direct caller of its ``detect`` method: a bug or an input it cannot
    handle yields no finding (and a log line), never an exception.

    The pipeline calls ``check`` instead, which lets an exception through: the guard stage runs
    each detector in isolation and records the failure, so that ``guard_errors="closed"`` can act
    on it.
    """
    try:
        return detect()
    except Exception:
        _log.warning("guardrail detector %r failed; it reports nothing", name, exc_info=True)
        return []


class NoModel:
    """Stands in for a model where none is configured (the ``check`` command, team checks without
    a model): any call fails, so optional model checks fall back to the offline heuristics."""

    model_name = "none"

    async def complete(self, messages: Sequence[Message], **settings: Any) -> Completion:
        raise RuntimeError("no model is configured for guardrail model checks")
