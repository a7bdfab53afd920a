"""The :class:`PersonaPipeline`: the conductor of a turn.

It orders the stages and nothing else; each stage's logic lives in the module named after it
(selection, injection, candidates, judging, refinement, guard, observe), and every stage runs the
same way (:class:`~persona_plugins.stages.TurnContext`): a plugin that raises is recorded in
:attr:`TurnResult.errors` and its stage skipped, so the user's message is never lost. Only a turn
with no answer at all (``ModelCallError``) or a response blocked in ``enforce`` mode raises.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pluggy
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from persona_plugins import semconv
from persona_plugins.answers import collect_extractors, extract_answers
from persona_plugins.candidates import only_builtin_candidates, produce_candidates
from persona_plugins.config import PipelineConfig
from persona_plugins.errors import ConfigError, MessageError
from persona_plugins.guard import collect_detectors, guard_response, resolve_stage, run_detectors
from persona_plugins.hookcalls import Hooks
from persona_plugins.injection import prepare_prompt, static_prepared, write_persona
from persona_plugins.judging import choose_candidate
from persona_plugins.messages import MessagesInput, normalize_messages, optional_messages
from persona_plugins.metrics import PipelineMetrics
from persona_plugins.model import ChatModel, Message
from persona_plugins.observe import observe_turn
from persona_plugins.persona import Persona, resolve_persona
from persona_plugins.personas import collect_personas
from persona_plugins.plugins import (
    announce_configuration,
    check_names,
    check_plugins,
    get_plugin_manager,
)
from persona_plugins.refinement import collect_refiners, refine_draft
from persona_plugins.results import (
    Candidate,
    Finding,
    GuardOutcome,
    PreparedPrompt,
    Resolution,
    TurnResult,
)
from persona_plugins.selection import choose_persona, configured_persona
from persona_plugins.stages import Once, TurnContext
from persona_plugins.tracing import (
    Telemetry,
    enable_hook_tracing,
    genai_messages,
    genai_output,
    hook_tracing_requested,
    recording_scope,
    turn_attributes,
    turn_result_attributes,
)

__all__ = ["MessagesInput", "PersonaPipeline", "collect_personas", "normalize_messages"]


class PersonaPipeline:
    """Runs a turn through the persona-plugins stages around any :class:`ChatModel`.

    Example::

        from persona_plugins import PersonaPipeline
        from persona_plugins.integrations.llama_cpp import LlamaCppChatModel

        pipeline = PersonaPipeline(LlamaCppChatModel(), persona="pirate_captain")
        result = pipeline.run_sync("What is the capital of France?")
        print(result.text, result.model_calls)

    Args:
        model: any object with ``async complete(messages, **settings) -> Completion``.
        config: a :class:`PipelineConfig`, a mapping of its fields, or None for the defaults.
        plugin_manager: the plugin manager to use (default: the shared one, with entry points).
        tracer_provider: the OpenTelemetry tracer provider (default: the global one).
        meter_provider: the OpenTelemetry meter provider (default: the global one).
        **overrides: config fields set on top of ``config`` (``persona="math_teacher"``).

    Raises:
        ConfigError: for an invalid config, or one naming a detector, refiner or answer format
            that is not registered; PersonaError: for an unknown persona or a bad file;
        PluginError: for a registered plugin that implements a hook that does not exist.
    """

    def __init__(
        self,
        model: ChatModel,
        config: PipelineConfig | Mapping[str, Any] | None = None,
        *,
        plugin_manager: pluggy.PluginManager | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        **overrides: Any,
    ):
        if not callable(getattr(model, "complete", None)):
            raise ConfigError(
                f"model must be a ChatModel (an object with an async complete(messages) method); "
                f"got {type(model).__name__}. AutoGen and Semantic Kernel clients are converted by "
                "the adapters in persona_plugins.adapters."
            )
        self.model = model
        self.pm = plugin_manager or get_plugin_manager()
        check_plugins(self.pm)  # plugins registered after the manager was built, too
        self.telemetry = Telemetry(tracer_provider)
        if hook_tracing_requested():
            enable_hook_tracing(self.pm, self.telemetry)
        self.metrics = PipelineMetrics(meter_provider)
        self.hooks = Hooks(self.pm)  # which implementations each hook has, resolved once
        self.once = Once()  # work that does not change between turns (the persona's text)
        built = PipelineConfig.build(
            dict(config) if isinstance(config, Mapping) else config, **overrides
        )
        self.personas = collect_personas(self.pm)
        persona = resolve_persona(built.persona, self.personas)
        self.config = built.model_copy(update={"persona": persona})
        self.refiners = collect_refiners(self.pm)
        self.detectors = collect_detectors(self.pm)
        self.extractors = collect_extractors(self.pm)
        found = self.extractors, self.refiners, self.detectors
        check_names(built, answer_format=found[0], refiners=found[1], detectors=found[2])
        announce_configuration(self.pm, self.config)

    def extract_answers(self, question: str, candidates: Sequence[Candidate]) -> None:
        """Fill in each candidate's ``answer`` (unless a plugin already set it)."""
        extract_answers(self.extractors, self.config.answer_format, question, candidates)

    @property
    def can_stream(self) -> bool:
        """True when a turn's answer is the model's own output, unchanged after generation.

        Then an adapter passes the call to the framework's own client after :meth:`prepare`
        (streaming its tokens straight through, or not) and finishes the turn with
        :func:`~persona_plugins.adapter_kit.finish_reply`; otherwise (ensemble, refinement,
        guardrails, a plugin of its own producing candidates) the whole turn runs here.
        """
        c = self.config
        if c.ensemble != "off" or c.refine != "off" or c.guard != "off":
            return False
        if c.persona_mode != "static" and c.persona_mode != "none":
            return False
        # depends on the generate_candidates implementations alone: worked out when they change
        return self.hooks.derived("generate_candidates", self._only_builtin_candidates)

    def _only_builtin_candidates(self) -> bool:
        return only_builtin_candidates(self.pm)

    @property
    def observed(self) -> bool:
        """True when a plugin watches finished turns (an ``on_turn_complete`` implementation):
        an adapter must then hand it every turn it finishes itself (see :meth:`observe`)."""
        return self.hooks.implementations("on_turn_complete") != ()

    async def observe(self, result: TurnResult, messages: Sequence[Message] = ()) -> TurnResult:
        """Stage 7 for a turn an adapter finished itself (a call its framework's client answered
        with the persona injected): every ``on_turn_complete`` implementation sees ``result``, as
        for :meth:`run`; an observer's failure is recorded in ``result.errors``."""
        if not self.observed:
            return result
        turn = TurnContext.start(self, list(messages))
        turn.errors = list(result.errors)
        await observe_turn(turn, result)
        return result

    # -- a whole turn --------------------------------------------------------------------------

    def run_sync(self, messages: MessagesInput, **settings: Any) -> TurnResult:
        """Run one turn from synchronous code (not from inside a running event loop)."""
        return asyncio.run(self.run(messages, **settings))

    async def run(
        self, messages: MessagesInput, *, model: ChatModel | None = None, **settings: Any
    ) -> TurnResult:
        """Run one turn and return everything it produced.

        :param messages: the conversation (a string is one user message).
        :param model: use this model for the turn instead of the pipeline's (adapters pass a view
            of the framework client bound to the call's cancellation token).
        :param settings: generation settings for this turn's candidate calls.
        """
        turn = TurnContext.start(self, normalize_messages(messages), model)
        started = time.perf_counter()
        with self.telemetry.span(
            semconv.SPAN_TURN, lambda: turn_attributes(self.config, turn.model.model_name)
        ) as span:
            span.set_content(semconv.GEN_AI_INPUT_MESSAGES, lambda: genai_messages(turn.messages))
            with recording_scope(span.recording):  # not recorded: no stage span either
                result = await self._turn(turn, settings)
                result.duration_s = time.perf_counter() - started
                if span.recording:
                    span.set_many(turn_result_attributes(result))
                    span.set_content(
                        semconv.GEN_AI_OUTPUT_MESSAGES, lambda: genai_output(result.text)
                    )
                await observe_turn(turn, result)
            return result

    async def _turn(self, turn: TurnContext, settings: dict[str, Any]) -> TurnResult:
        """The stages of a turn, in order."""
        choice = await choose_persona(turn, self.personas)
        persona = choice.persona
        system_prompt, prompt = await write_persona(turn, persona)
        candidates = await produce_candidates(turn, prompt, persona, settings)
        chosen, judgement = await choose_candidate(turn, candidates, persona, self.extractors)
        plan, text, reviews = await refine_draft(turn, chosen.text, persona, self.refiners)
        guarded = await guard_response(
            turn, text, candidates=candidates, persona=persona, detectors=self.detectors
        )
        if guarded.blocked:
            raise guarded.violation(turn.messages)
        return TurnResult(
            text=guarded.text,
            persona=persona,
            persona_source=choice.source,
            persona_note=choice.note,
            system_prompt=system_prompt,
            prompt=prompt,
            candidates=candidates,
            chosen=chosen.name,
            judgement=judgement,
            refinement_plan=plan,
            reviews=reviews,
            findings=guarded.findings,
            action=guarded.action,
            failed_detectors=guarded.failed_detectors,
            usage=turn.model.usage,
            model_calls=turn.model.calls,
        )

    # -- single stages, for adapters and for text made outside a turn --------------------------

    async def prepare(
        self, messages: MessagesInput, *, model: ChatModel | None = None
    ) -> PreparedPrompt:
        """Run only the first two stages: choose the persona and write it into the prompt.

        Adapters use this for turns that must reach the model untouched apart from the persona
        (tool calls, images, streaming). Unchanged messages are the very objects passed in.
        While only the built-in persona hooks could take part and nothing records the stages, the
        same result is made without the stage machinery (``injection.static_prepared``).
        """
        listed = normalize_messages(messages)
        if not self.telemetry.recording() and not self.metrics.enabled:  # no stage leaves a trace
            chat = model if model is not None else self.model
            static = static_prepared(self.hooks, self.once, self.config, listed, chat)
            if static is not None:  # only the built-ins could take part: their result, directly
                return static
        turn = TurnContext.start(self, listed, model)
        with self.telemetry.span(
            f"{semconv.SPAN_STAGE_PREFIX}prepare", {semconv.PP_STAGE: "prepare"}
        ) as span:
            with recording_scope(span.recording):  # tracing off: no inner stage spans either
                prepared = await prepare_prompt(turn, self.personas)
            span.set(semconv.PP_PERSONA_NAME, prepared.persona.name if prepared.persona else None)
            return prepared

    async def refine(
        self,
        messages: MessagesInput,
        draft: str,
        *,
        persona: Persona | str | None = None,
        model: ChatModel | None = None,
    ) -> TurnResult:
        """Run only the refine stage on ``draft``, a reply to ``messages`` you already have, for
        ``persona`` (default: the configured one) with ``model`` (default: the pipeline's).

        :return: a :class:`TurnResult` with the refined ``text``, the ``refinement_plan``, every
            review, and their calls and tokens (``refine="off"``: the draft unchanged).
        """
        turn = TurnContext.start(self, normalize_messages(messages), model)
        if not isinstance(draft, str) or not draft.strip():
            raise MessageError("draft must be the non-empty text of the reply to refine")
        chosen = resolve_persona(persona, self.personas) if persona is not None else None
        if persona is None and isinstance(self.config.persona, Persona):
            chosen = self.config.persona
        started = time.perf_counter()
        attributes = {
            semconv.GEN_AI_OPERATION_NAME: semconv.OP_INVOKE_WORKFLOW,
            semconv.PP_REFINE: self.config.refine,
        }
        with self.telemetry.span("invoke_workflow persona_refine", attributes):
            plan, text, reviews = await refine_draft(turn, draft, chosen, self.refiners)
        return TurnResult(
            text=text,
            persona=chosen,
            persona_source="config" if chosen is not None else "none",
            prompt=turn.messages,
            refinement_plan=plan,
            reviews=reviews,
            usage=turn.model.usage,
            model_calls=turn.model.calls,
            errors=turn.errors,
            duration_s=time.perf_counter() - started,
        )

    async def guard(
        self,
        text: str,
        messages: MessagesInput | None = None,
        *,
        candidates: Sequence[Candidate] = (),
        persona: Persona | str | None = None,
        model: ChatModel | None = None,
    ) -> GuardOutcome:
        """Guard a response: check it, and in ``enforce`` mode resolve and apply the findings.

        The one guard operation: a turn runs it on its answer, and every adapter runs it on text
        made outside a turn (a Semantic Kernel function result, a team member's message). It
        follows ``config.guard``: ``off`` checks nothing, ``monitor`` records findings,
        ``enforce`` acts. Nothing is raised for a blocked response: ``outcome.action`` is
        ``"block"``, and ``raise outcome.violation(messages)`` raises the
        :class:`~persona_plugins.GuardrailViolation` a turn raises.

        :param text: the response to guard (anything that is not text is checked as empty text).
        :param messages: the conversation it answers (default: none).
        :param candidates: other answers to the same conversation (a clean neutral one allows a
            fallback without a model call).
        :param persona: the persona the response speaks as (default: the configured one).
        :param model: the model detectors and regeneration use (default: the pipeline's).
        :return: the :class:`~persona_plugins.GuardOutcome`: findings, resolution, action, the
            text to use, errors and the detectors that failed.
        """
        turn = TurnContext.start(self, optional_messages(messages), model)
        who = configured_persona(self.config) if persona is None else persona
        if isinstance(who, str):
            who = resolve_persona(who, self.personas)
        return await guard_response(
            turn,
            text if isinstance(text, str) else "",
            candidates=candidates,
            persona=who,
            detectors=self.detectors,
        )

    async def check(
        self,
        text: str,
        messages: MessagesInput | None = None,
        *,
        model: ChatModel | None = None,
    ) -> list[Finding]:
        """Run only the guard's detectors on ``text`` (answering ``messages``, default none, with
        ``model`` for detectors that confirm a finding); never act on them. Calling it is the
        request, so the detectors run whatever ``guard`` is set to. A detector that raises is
        recorded on the stage span and skipped (:meth:`guard` says which).

        :return: every finding, in detector order; empty when the text is clean.
        """
        config = self.config
        if config.guard == "off":  # calling check() is the request to look
            config = config.model_copy(update={"guard": "monitor"})
        turn = TurnContext.start(self, optional_messages(messages), model, config)
        persona = configured_persona(config)
        return await run_detectors(turn, text, persona, self.detectors, failed=[])

    async def resolve(
        self,
        text: str,
        findings: Sequence[Finding],
        messages: MessagesInput | None = None,
        *,
        candidates: Sequence[Candidate] = (),
        persona: Persona | None = None,
        model: ChatModel | None = None,
    ) -> Resolution | None:
        """Run only ``resolve_findings`` on findings you already have (``enforce`` policy).

        Nothing is raised and nothing applied: prefer :meth:`guard`, which checks, resolves and
        applies in one call.

        :return: the resolution, or None when no plugin decided (or one raised: recorded on the
            stage span).
        """
        turn = TurnContext.start(self, optional_messages(messages), model)
        if persona is None and isinstance(self.config.persona, Persona):
            persona = self.config.persona
        return await resolve_stage(
            turn, text, list(findings), candidates, persona, self.detectors, failed=[]
        )
