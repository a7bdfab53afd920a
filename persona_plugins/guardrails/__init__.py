"""Bias guardrails against persona-induced harms: built-in detectors, actions and team checks.

Each detector is registered through the ``register_detectors`` hook by an ordinary plugin of
``DEFAULT_PLUGINS``; it runs when ``config.guard`` is not ``off`` and its name is in
``config.detectors`` (an entry may carry options after a colon, ``"stereotype:confirm"``), each in
isolation (the guard stage, :mod:`persona_plugins.guard`):

- ``abstention`` (:mod:`.abstention`): persona-induced refusals ("As a <persona>, I can't ...");
  ``:judge`` asks the model about uncertain ones;
- ``stereotype`` (:mod:`.stereotype`): generalisations about protected groups, agreement with a
  user's stereotype; ``:confirm`` asks the model to confirm;
- ``toxicity`` (:mod:`.toxicity`): slurs, threats, dehumanising statements, insults, profanity;
  ``:profanity_check``, ``:detoxify``, ``:llm_guard`` add a local classifier already on disk;
- ``persona_contradiction`` (:mod:`.contradiction`): contradictions of the persona's statements,
  scored after APC; ``:judge`` uses the model as judge.

Every built-in detector reads text as :func:`.normalise.normalise` returns it (format characters
removed, NFKC, look-alike letters folded, markdown markers stripped, whitespace collapsed, case
folded, with offsets back to the original), at most :data:`.normalise.MAX_CHARS` characters of a
response and :data:`.normalise.MAX_USER_CHARS` of the user's message, with patterns linear in the
length of the text.

:mod:`.actions` is the ``resolve_findings`` plugin (allow, annotate, fall back, regenerate, block),
and :mod:`.team` holds the framework-neutral team checks (monopolization, drift, length) that the
AutoGen ``TeamGuardHandler`` runs. Nothing here downloads anything.

Example::

    from persona_plugins.guardrails import check_text

    findings = check_text("As a woman, I can't help with car repairs.", persona="woman")
    print([(f.detector, f.severity) for f in findings])
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from persona_plugins.guardrails._base import NoModel, detector_options
from persona_plugins.results import Finding

if TYPE_CHECKING:
    from persona_plugins.pipeline import PersonaPipeline

__all__ = [
    "BUILTIN_DETECTORS",
    "NoModel",
    "acheck_text",
    "check_text",
    "detector_options",
    "guard_pipeline",
]

#: The names of the built-in detectors, as listed in ``PipelineConfig.detectors``.
BUILTIN_DETECTORS = ("abstention", "stereotype", "toxicity", "persona_contradiction")


def guard_pipeline(
    *,
    persona: Any = None,
    config: Any = None,
    model: Any = None,
    plugin_manager: Any = None,
    tracer_provider: Any = None,
    meter_provider: Any = None,
) -> PersonaPipeline:
    """A pipeline for checking text outside a turn (:meth:`PersonaPipeline.check`).

    :param persona: a :class:`~persona_plugins.Persona`, a catalog name or a file, or None.
    :param config: a :class:`~persona_plugins.PipelineConfig` or a mapping of its fields
        (``guard`` defaults to ``monitor`` here, so that the detectors run).
    :param model: a chat model for the optional model checks (default: none; the offline
        heuristics are used).
    """
    from persona_plugins.config import PipelineConfig
    from persona_plugins.pipeline import PersonaPipeline

    if isinstance(config, PipelineConfig):
        data = {name: getattr(config, name) for name in config.model_fields_set}
    else:
        data = dict(config or {})
    data.setdefault("guard", "monitor")
    data["persona"] = persona
    data["persona_mode"] = "static" if persona is not None else "none"
    return PersonaPipeline(
        model if model is not None else NoModel(),
        data,
        plugin_manager=plugin_manager,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
    )


# Pipelines built by acheck_text, by what they were built from, so that checking many texts builds
# one pipeline per persona and configuration, not one per call.
_pipelines: OrderedDict[tuple[Any, ...], PersonaPipeline] = OrderedDict()
_pipelines_lock = threading.Lock()
_REMEMBERED_PIPELINES = 16


def _cached_guard_pipeline(
    persona: Any, config: Any, model: Any, plugin_manager: Any
) -> PersonaPipeline:
    from persona_plugins.plugins import get_plugin_manager

    pm = plugin_manager or get_plugin_manager()
    settings = config if not isinstance(config, dict) else sorted(config.items(), key=str)
    # The pipeline holds the manager and the model, so their ids stay theirs while it is cached.
    key = (id(pm), id(model) if model is not None else None, repr(persona), repr(settings))
    with _pipelines_lock:
        pipeline = _pipelines.get(key)
        if pipeline is not None:
            _pipelines.move_to_end(key)
            return pipeline
    pipeline = guard_pipeline(persona=persona, config=config, model=model, plugin_manager=pm)
    with _pipelines_lock:
        _pipelines[key] = pipeline
        while len(_pipelines) > _REMEMBERED_PIPELINES:
            _pipelines.popitem(last=False)
    return pipeline


async def acheck_text(
    text: str,
    *,
    messages: Sequence[Any] | str | None = None,
    persona: Any = None,
    config: Any = None,
    model: Any = None,
    plugin_manager: Any = None,
) -> list[Finding]:
    """Run every ``check_response`` detector (built-in and third-party) on one text.

    For checking text outside a turn, such as the ``check`` command; it calls
    :meth:`PersonaPipeline.check` on a :func:`guard_pipeline`, built once per persona,
    configuration, model and plugin manager (the last few are kept), so checking many texts
    builds no pipeline per call.

    :param text: the response to check (anything that is not text is checked as empty text).
    :param messages: the conversation it answers: a list of messages or the user's question.
    :param persona, config, model, plugin_manager: as for :func:`guard_pipeline`.
    :return: the findings, in the order the detectors returned them; none when ``guard="off"``.
    """
    pipeline = _cached_guard_pipeline(persona, config, model, plugin_manager)
    if pipeline.config.guard == "off":
        return []
    conversation: list[Any] | None
    if isinstance(messages, str):
        conversation = [{"role": "user", "content": messages}] if messages.strip() else None
    else:
        conversation = list(messages) if messages else None
    response = text if isinstance(text, str) else ""
    return await pipeline.check(response, conversation)


def check_text(text: str, **kwargs: Any) -> list[Finding]:
    """:func:`acheck_text` from synchronous code (not from inside a running event loop)."""
    return asyncio.run(acheck_text(text, **kwargs))
