"""What every built-in detector shares: reading its entry in ``config.detectors``, never raising,
and asking the model for an optional confirmation."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from persona_plugins.model import ChatModel, Completion, Message
from persona_plugins.results import Finding

__all__ = [
    "NoModel",
    "agent_model",
    "detector_options",
    "guarded",
]

_log = logging.getLogger("persona_plugins.guardrails")


def detector_options(config: Any, name: str) -> frozenset[str] | None:
    """The options of detector ``name`` in ``config.detectors``, or None when it should not run.

    An entry is a detector name, optionally followed by options after a colon:
    ``"stereotype"``, ``"stereotype:confirm"``, ``"persona_contradiction:judge"``,
    ``"toxicity:profanity_check"``. A detector runs only when ``config.guard`` is not ``off`` and
    its name is listed.

    >>> from persona_plugins import PipelineConfig
    >>> sorted(detector_options(PipelineConfig(guard="monitor",
    ...     detectors=["stereotype:confirm"]), "stereotype"))
    ['confirm']
    """
    if config is None:
        return frozenset()
    if getattr(config, "guard", "off") == "off":
        return None
    for entry in getattr(config, "detectors", None) or ():
        if not isinstance(entry, str):
            continue
        head, _, rest = entry.partition(":")
        if head.strip() == name:
            return frozenset(o.strip() for o in rest.split(",") if o.strip())
    return None


def guarded(name: str, detect: Callable[[], list[Finding]]) -> list[Finding]:
    """Run a detector; a bug or an input it cannot handle yields no finding, never an exception.

    The check stage runs every detector together, so one detector that raised would cost the
    findings of all the others.
    """
    try:
        return detect()
    except Exception:
        _log.warning("guardrail detector %r failed; it reports nothing", name, exc_info=True)
        return []


def agent_model(model: ChatModel, agent: str) -> ChatModel:
    """The model as seen by one named agent (a separate ``gen_ai.agent.name`` in traces)."""
    as_agent = getattr(model, "as_agent", None)
    return as_agent(agent) if callable(as_agent) else model


class NoModel:
    """Stands in for a model where none is configured (the ``check`` command, team checks without
    a model): any call fails, so optional model checks fall back to the offline heuristics."""

    model_name = "none"

    async def complete(self, messages: Sequence[Message], **settings: Any) -> Completion:
        raise RuntimeError("no model is configured for guardrail model checks")
