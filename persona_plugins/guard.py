"""Stage 6, guard: one operation that checks a response, decides what to do, and does it.

:func:`guard_response` is the only place where the guard's steps are written; a turn, the Semantic
Kernel function filter, the AutoGen team handler and every other adapter reach it through
:meth:`PersonaPipeline.guard <persona_plugins.PersonaPipeline.guard>`:

1. **check**: every detector registered through ``register_detectors`` and named in
   ``config.detectors``, and every ``check_response`` implementation, each run in isolation. One
   that raises is recorded (in the errors, with its name, and in ``failed_detectors``); the others'
   findings stand.
2. **resolve** (``enforce`` mode, with findings): ``resolve_findings`` decides. It is given
   ``recheck`` (every detector again, on another text) and ``regenerate`` (the conversation
   answered once more through the persona stage, with an extra instruction), so a regenerated
   answer is written with the turn's persona plugins and checked by third-party detectors too.
3. **apply**: the resolution's text replaces the response (``annotate``, ``fallback``,
   ``regenerate``), or the response is blocked (``block``: the caller raises
   :class:`~persona_plugins.GuardrailViolation`, or, in a team, rewrites the message).

``guard_errors`` says what a failure of the guard itself does in ``enforce`` mode: ``open`` (the
default) lets the response through with the failure recorded; ``closed`` blocks it, naming the
detector (or the resolver) that failed.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pluggy

from persona_plugins import semconv
from persona_plugins.config import PipelineConfig
from persona_plugins.hookcalls import collect_named, each_implementation, flatten
from persona_plugins.injection import write_persona
from persona_plugins.persona import Persona
from persona_plugins.results import (
    Candidate,
    Detector,
    Finding,
    GuardAction,
    GuardOutcome,
    Resolution,
)
from persona_plugins.stages import PASS_THROUGH, TurnContext, record_failure
from persona_plugins.tracing import SafeSpan, finding_event

__all__ = [
    "collect_detectors",
    "detector_options",
    "guard_response",
    "resolve_stage",
    "run_detectors",
    "selected_detectors",
]

#: The agent name of the regeneration call (``gen_ai.agent.name`` on its span).
REGENERATE_AGENT = "guard_regenerate"

_KEEP: Any = object()  # recheck(text) with the response's own persona


def collect_detectors(pm: pluggy.PluginManager) -> dict[str, Detector]:
    """Every detector registered through ``register_detectors``, by name (a name registered twice
    keeps the later registration)."""
    return collect_named(pm, "register_detectors", "check")


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


def selected_detectors(
    detectors: dict[str, Detector], config: PipelineConfig
) -> list[tuple[str, Detector]]:
    """The registered detectors ``config.detectors`` names, in its order."""
    chosen: list[tuple[str, Detector]] = []
    for entry in config.detectors:
        name = entry.partition(":")[0].strip()
        detector = detectors.get(name)
        if detector is not None and all(name != seen for seen, _ in chosen):
            chosen.append((name, detector))
    return chosen


def _findings_of(name: str, produced: Any) -> list[Finding]:
    found = flatten([produced])
    for item in found:
        if not isinstance(item, Finding):
            raise TypeError(
                f"detector {name!r} returned a {type(item).__name__}; expected a list of Finding"
            )
    return found


#: Responses longer than this many characters are checked off the event loop: the synchronous
#: part of every detector that declares itself ``thread_safe`` (the built-in ones do) runs in a
#: worker thread, so that a long text never holds the loop (and every other agent of the
#: process) for more than a moment. Shorter texts take well under a millisecond on the loop,
#: less than the hand-off to a thread would cost.
OFF_LOOP_CHARS = 2_000


def _start(jobs: Sequence[tuple[str, Callable[[], Any]]]) -> list[tuple[str, Any]]:
    """Call every job: ``(name, its result or awaitable)`` or ``(name, the exception)``."""
    started: list[tuple[str, Any]] = []
    for name, job in jobs:
        try:
            started.append((name, job()))
        except PASS_THROUGH:
            _close(started)
            raise
        except Exception as exc:
            started.append((name, exc))
    return started


def _close(started: Sequence[tuple[str, Any]]) -> None:
    for _, value in started:  # the turn ends here: never leave a coroutine unawaited
        if inspect.iscoroutine(value):
            value.close()


async def _start_in_thread(jobs: list[tuple[str, Callable[[], Any]]]) -> list[tuple[str, Any]]:
    """:func:`_start` in a worker thread (with this task's context, as ``asyncio.to_thread``).
    A cancelled turn does not wait for the thread, but what the thread then starts is closed
    when it finishes, never left unawaited."""
    context = contextvars.copy_context()
    running = asyncio.get_running_loop().run_in_executor(None, context.run, _start, jobs)
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:

        def close_late(done: asyncio.Future[list[tuple[str, Any]]]) -> None:
            if not done.cancelled() and done.exception() is None:
                _close(done.result())

        running.add_done_callback(close_late)
        raise


async def _isolated(
    jobs: list[tuple[str, Callable[[], Any]]], *, off_loop: frozenset[str] = frozenset()
) -> list[tuple[str, Any]]:
    """Run every job, each in isolation: ``(name, findings)`` or ``(name, the exception)``.

    Synchronous detectors run one after the other (those named in ``off_loop`` in one worker
    thread, the others on the loop); the awaitables they (or async detectors) return are awaited
    concurrently, on the loop. Results keep the order of ``jobs``.
    """
    on_loop = [job for job in jobs if job[0] not in off_loop]
    threaded = [job for job in jobs if job[0] in off_loop]
    started_here = _start(on_loop)
    try:
        started_there = await _start_in_thread(threaded) if threaded else []
    except BaseException:
        _close(started_here)
        raise
    by_name = iter(started_here), iter(started_there)
    started = [next(by_name[1] if name in off_loop else by_name[0]) for name, _ in jobs]
    waiting = [i for i, (_, value) in enumerate(started) if inspect.isawaitable(value)]
    if waiting:
        settled = await asyncio.gather(*(started[i][1] for i in waiting), return_exceptions=True)
        for index, value in zip(waiting, settled, strict=True):
            if isinstance(value, PASS_THROUGH) or (
                isinstance(value, BaseException) and not isinstance(value, Exception)
            ):
                raise value  # the turn's outcome (or a cancellation), not a detector's failure
            started[index] = (started[index][0], value)
    out: list[tuple[str, Any]] = []
    for name, value in started:
        if not isinstance(value, BaseException):
            try:
                value = _findings_of(name, value)
            except TypeError as exc:
                value = exc
        out.append((name, value))
    return out


async def run_detectors(
    turn: TurnContext,
    text: str,
    persona: Persona | None,
    detectors: dict[str, Detector],
    *,
    failed: list[str],
    stage: str = "check_response",
    config: PipelineConfig | None = None,
) -> list[Finding]:
    """Check ``text`` with every selected detector and every ``check_response`` implementation,
    each in isolation; the names of those that raised are added to ``failed``."""
    config = config or turn.config
    kwargs: dict[str, Any] = {
        "messages": turn.messages,
        "response": text,
        "persona": persona,
        "config": config,
        "model": turn.model,
    }

    async def check(span: SafeSpan) -> list[Finding]:
        chosen = selected_detectors(detectors, config)
        jobs: list[tuple[str, Callable[[], Any]]] = [
            (name, functools.partial(detector.check, *kwargs.values())) for name, detector in chosen
        ]
        off_loop = frozenset(
            name
            for name, detector in chosen
            if len(text) > OFF_LOOP_CHARS and getattr(detector, "thread_safe", False) is True
        )
        jobs += [
            (impl.label, functools.partial(impl.call, **kwargs))
            for impl in each_implementation(turn.pm, "check_response")
        ]
        found: list[Finding] = []
        failing: list[str] = []
        for name, result in await _isolated(jobs, off_loop=off_loop):
            if isinstance(result, BaseException):
                record_failure(turn.errors, span, stage, result, plugin=name)
                failing.append(name)
            else:
                found.extend(result)
        for finding in found:
            span.event(semconv.GEN_AI_EVALUATION_RESULT_EVENT, finding_event(finding))
        span.set(semconv.PP_FINDINGS_COUNT, len(found))
        span.set(semconv.PP_FAILED_DETECTORS, failing or None)
        failed.extend(failing)
        return found

    findings: list[Finding] = await turn.stage(stage, check) or []
    for finding in findings:
        turn.metrics.finding(finding.detector, finding.severity)
    return findings


def _regenerator(turn: TurnContext, persona: Persona | None) -> Callable[..., Awaitable[str]]:
    async def regenerate(instruction: str, **settings: Any) -> str:
        """Answer the conversation once more through the persona stage, with ``instruction``
        after the persona's system prompt; return the new text."""
        _, prompt = await write_persona(turn, persona, instruction=instruction)
        completion = await turn.model.as_agent(REGENERATE_AGENT).complete(prompt, **settings)
        return completion.text

    return regenerate


def _rechecker(
    turn: TurnContext,
    response_persona: Persona | None,
    detectors: dict[str, Detector],
    failed: list[str],
) -> Callable[..., Awaitable[list[Finding]]]:
    async def recheck(text: str, *, persona: Persona | None = _KEEP) -> list[Finding]:
        """Every detector on ``text``, as on the response (``persona=None``: as a neutral
        answer)."""
        who = response_persona if persona is _KEEP else persona
        return await run_detectors(
            turn, text, who, detectors, failed=failed, stage="recheck_response"
        )

    return recheck


async def resolve_stage(
    turn: TurnContext,
    text: str,
    findings: list[Finding],
    candidates: Sequence[Candidate],
    persona: Persona | None,
    detectors: dict[str, Detector],
    *,
    failed: list[str],
) -> Resolution | None:
    """Ask ``resolve_findings`` what to do with ``text`` and its findings (None: no decision, or
    the resolver raised, recorded); re-checks add the detectors that failed to ``failed``."""

    async def resolve(span: SafeSpan) -> Resolution | None:
        resolution: Resolution | None = await turn.hooks.decide(
            "resolve_findings",
            **turn.hook_arguments(
                persona,
                response=text,
                findings=findings,
                candidates=list(candidates),
                recheck=_rechecker(turn, persona, detectors, failed),
                regenerate=_regenerator(turn, persona),
            ),
        )
        if resolution is not None:
            span.set(semconv.PP_ACTION, resolution.action)
        return resolution

    return await turn.stage("resolve_findings", resolve)


def _closed(failed: Sequence[str], resolver_failed: bool) -> Resolution:
    parts = [f"detector {name!r}" for name in dict.fromkeys(failed)]
    if resolver_failed:
        parts.append("resolve_findings")
    return Resolution(
        action="block",
        reason=f"blocked because the guardrails could not check the response: "
        f"{', '.join(parts)} failed (guard_errors='closed')",
    )


def _apply(resolution: Resolution | None, text: str) -> tuple[GuardAction, str]:
    if resolution is None:
        return "allow", text
    if resolution.action in ("allow", "block") or not resolution.text:
        return resolution.action, text
    return resolution.action, resolution.text


async def guard_response(
    turn: TurnContext,
    text: str,
    *,
    candidates: Sequence[Candidate] = (),
    persona: Persona | None,
    detectors: dict[str, Detector],
) -> GuardOutcome:
    """Check ``text``, and in ``enforce`` mode resolve its findings and apply the resolution.

    Nothing is raised for a blocked response: the outcome says ``action="block"`` and the caller
    acts on it (:meth:`GuardOutcome.violation` builds the error). Failures are recorded on
    ``turn.errors`` and on the outcome.
    """
    config = turn.config
    if config.guard == "off":
        return GuardOutcome(text=text, response=text)
    first_error = len(turn.errors)
    failed: list[str] = []
    findings = await run_detectors(turn, text, persona, detectors, failed=failed)
    resolution: Resolution | None = None
    resolver_failed = False
    if config.guard == "enforce":
        if findings:
            resolution = await resolve_stage(
                turn, text, findings, candidates, persona, detectors, failed=failed
            )
            resolver_failed = resolution is None and any(
                e.stage == "resolve_findings" for e in turn.errors[first_error:]
            )
        if config.guard_errors == "closed" and (failed or resolver_failed):
            resolution = _closed(failed, resolver_failed)
    action, final = _apply(resolution, text)
    return GuardOutcome(
        text=final,
        response=text,
        findings=findings,
        resolution=resolution,
        action=action,
        errors=turn.errors[first_error:],
        failed_detectors=list(dict.fromkeys(failed)),
    )
