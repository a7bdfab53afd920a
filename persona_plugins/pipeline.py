"""The :class:`PersonaPipeline`: one turn, stage by stage, each stage a hook.

Stages, in order: choose the persona, write it into the prompt, produce candidates, choose among
them, refine, guard, observe. A stage with no implementation is a no-op. A plugin that raises is
recorded in :attr:`TurnResult.errors` and its stage is skipped; the turn goes on, so the user's
message is never lost. Only a turn in which every way of getting an answer failed raises
(:class:`~persona_plugins.errors.ModelCallError`), as does a response blocked in ``enforce`` mode
(:class:`~persona_plugins.errors.GuardrailViolation`).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import pluggy
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider
from pydantic import ValidationError

from persona_plugins import semconv
from persona_plugins.candidates import complete_candidate
from persona_plugins.config import PipelineConfig
from persona_plugins.errors import (
    ConfigError,
    GuardrailViolation,
    MessageError,
    ModelCallError,
)
from persona_plugins.metrics import PipelineMetrics
from persona_plugins.model import ChatModel, Message
from persona_plugins.persona import Persona, resolve_persona
from persona_plugins.plugins import get_plugin_manager
from persona_plugins.results import (
    Candidate,
    Finding,
    Judgement,
    PersonaChoice,
    PreparedPrompt,
    RefinementPlan,
    Refiner,
    Resolution,
    Review,
    StageError,
    TurnResult,
)
from persona_plugins.tracing import (
    SafeSpan,
    Telemetry,
    enable_hook_tracing,
    genai_instructions,
    genai_messages,
    genai_output,
    hook_tracing_requested,
    recording_scope,
)
from persona_plugins.turn_model import TurnModel

__all__ = ["MessagesInput", "PersonaPipeline", "collect_personas", "normalize_messages"]

T = TypeVar("T")
MessagesInput = str | Sequence[Message | Mapping[str, Any]]


def normalize_messages(messages: MessagesInput) -> list[Message]:
    """Accept a string (one user message), :class:`Message` objects or ``{"role", "content"}``
    mappings; raise :class:`MessageError` naming the message at fault."""
    if isinstance(messages, str):
        if not messages.strip():
            raise MessageError("the message is empty; pass the user's question as text")
        return [Message.user(messages)]
    if not isinstance(messages, Iterable) or isinstance(messages, (bytes, Mapping)):
        raise MessageError(
            f"messages must be a string or a list of messages, not {type(messages).__name__}"
        )
    out: list[Message] = []
    for index, item in enumerate(messages):
        if isinstance(item, Message):
            out.append(item)
            continue
        if not isinstance(item, Mapping):
            raise MessageError(
                f"messages[{index}] is a {type(item).__name__}; expected a Message or a mapping "
                "with 'role' and 'content'"
            )
        try:
            out.append(Message.model_validate(dict(item)))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "(message)"
            raise MessageError(f"messages[{index}].{field}: {first['msg']}") from None
    if not out:
        raise MessageError("messages is empty; a turn needs at least one message")
    return out


async def _resolve(value: T | Awaitable[T]) -> T:
    if inspect.isawaitable(value):
        return await value
    return value


async def _gather(items: Sequence[Any]) -> list[Any]:
    """Await every awaitable among ``items`` concurrently; a single one is awaited directly
    (no task is created, which matters on the hot path)."""
    if len(items) == 1:
        return [await _resolve(items[0])]
    return list(await asyncio.gather(*(_resolve(item) for item in items)))


def _flatten(results: Iterable[Any]) -> list[Any]:
    flat: list[Any] = []
    for item in results:
        if item is None:
            continue
        if isinstance(item, (list, tuple)):
            flat.extend(x for x in item if x is not None)
        else:
            flat.append(item)
    return flat


def collect_personas(pm: pluggy.PluginManager) -> dict[str, Persona]:
    """The persona catalog: every persona registered through ``register_personas``, by name."""
    catalog: dict[str, Persona] = {}

    def register(persona: Persona) -> None:
        if not isinstance(persona, Persona):
            raise ConfigError(
                f"register_personas: register() takes a Persona, got {type(persona).__name__}"
            )
        catalog[persona.name] = persona

    pm.hook.register_personas(register=register)
    return catalog


def _last_user_text(messages: Sequence[Message]) -> str:
    users = [m.content for m in messages if m.role == "user"]
    return users[-1] if users else messages[-1].content


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
        ConfigError: for an invalid config; PersonaError: for an unknown persona or a bad file.
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
        self.telemetry = Telemetry(tracer_provider)
        if hook_tracing_requested():
            enable_hook_tracing(self.pm, self.telemetry)
        self.metrics = PipelineMetrics(meter_provider)
        built = PipelineConfig.build(
            dict(config) if isinstance(config, Mapping) else config, **overrides
        )
        self.personas = self._collect_personas()
        persona = resolve_persona(built.persona, self.personas)
        self.config = built.model_copy(update={"persona": persona})
        self.refiners = self._collect_refiners()
        self.extractors = self._collect_extractors()
        if self.config.answer_format != "auto" and self.config.answer_format not in self.extractors:
            raise ConfigError(
                f"answer_format {self.config.answer_format!r} is not a registered extractor; "
                f"use 'auto' or one of {sorted(self.extractors)}"
            )
        self.pm.hook.configure.call_historic(kwargs={"config": self.config})

    # -- set-up --------------------------------------------------------------------------------

    def _collect_personas(self) -> dict[str, Persona]:
        return collect_personas(self.pm)

    def _collect_refiners(self) -> dict[str, Refiner]:
        refiners: dict[str, Refiner] = {}

        def register(refiner: Refiner) -> None:
            name = getattr(refiner, "name", None)
            if not isinstance(name, str) or not callable(getattr(refiner, "review", None)):
                raise ConfigError(
                    "register_refiners: register() takes an object with a 'name' and a "
                    f"'review' method, got {type(refiner).__name__}"
                )
            refiners[name] = refiner

        self.pm.hook.register_refiners(register=register)
        return refiners

    def _collect_extractors(self) -> dict[str, Callable[[str], str | None]]:
        extractors: dict[str, Callable[[str], str | None]] = {}

        def register(name: str, extractor: Callable[[str], str | None]) -> None:
            if not isinstance(name, str) or not callable(extractor):
                raise ConfigError(
                    "register_answer_extractors: register() takes a name and a function"
                )
            extractors[name] = extractor

        self.pm.hook.register_answer_extractors(register=register)
        return extractors

    def extract_answers(self, question: str, candidates: Sequence[Candidate]) -> None:
        """Fill in each candidate's ``answer`` (unless a plugin already set it)."""
        if not self.extractors:
            return
        name = self.config.answer_format
        if name == "auto":
            from persona_plugins.answers import guess_answer_format

            name = guess_answer_format(question, [c.text for c in candidates])
        extractor = self.extractors.get(name)
        if extractor is None:
            return
        for candidate in candidates:
            if candidate.answer is None:
                try:
                    candidate.answer = extractor(candidate.text)
                except Exception:  # a broken extractor only loses the agreement shortcut
                    candidate.answer = None

    # -- running a turn ------------------------------------------------------------------------

    @property
    def can_stream(self) -> bool:
        """True when a turn's answer is the model's own output, unchanged after generation.

        Then an adapter may stream the model's tokens straight through after :meth:`prepare`;
        otherwise (ensemble, refinement, guardrails) the text is known only when the turn ends.
        """
        c = self.config
        return (
            c.ensemble == "off"
            and c.refine == "off"
            and c.guard == "off"
            and c.persona_mode in ("static", "none")
        )

    def _turn_model(self, model: ChatModel | None) -> TurnModel:
        return TurnModel(
            model if model is not None else self.model,
            self.telemetry,
            settings=self.config.model_settings,
            timeout_s=self.config.timeout_s,
            metrics=self.metrics,
        )

    def run_sync(self, messages: MessagesInput, **settings: Any) -> TurnResult:
        """Run one turn from synchronous code (not from inside a running event loop)."""
        return asyncio.run(self.run(messages, **settings))

    async def refine(
        self,
        messages: MessagesInput,
        draft: str,
        *,
        persona: Persona | str | None = None,
        model: ChatModel | None = None,
    ) -> TurnResult:
        """Run only the refine stage on a reply you already have.

        :param messages: the conversation the draft answers.
        :param draft: the reply to refine.
        :param persona: the persona the reply should fit (default: the configured one).
        :param model: the model the reviewers use (default: the pipeline's).
        :return: a :class:`TurnResult` with the refined ``text``, the ``refinement_plan``, every
            review, and the calls and tokens the refinement cost. With ``refine="off"`` the draft
            comes back unchanged.
        """
        msgs = normalize_messages(messages)
        if not isinstance(draft, str) or not draft.strip():
            raise MessageError("draft must be the non-empty text of the reply to refine")
        chosen = resolve_persona(persona, self.personas) if persona is not None else None
        if persona is None and isinstance(self.config.persona, Persona):
            chosen = self.config.persona
        started = time.perf_counter()
        turn_model = self._turn_model(model)
        errors: list[StageError] = []
        text, plan, reviews = draft, None, []
        attributes = {
            semconv.GEN_AI_OPERATION_NAME: semconv.OP_INVOKE_WORKFLOW,
            semconv.PP_REFINE: self.config.refine,
        }
        with self.telemetry.span("invoke_workflow persona_refine", attributes):
            if self.config.refine != "off" and self.refiners:

                async def body(span: SafeSpan) -> tuple[RefinementPlan | None, str, list[Review]]:
                    return await self._refine(msgs, draft, chosen, turn_model, span)

                refined = await self._stage("refine", errors, body)
                if refined is not None:
                    plan, text, reviews = refined
        return TurnResult(
            text=text,
            persona=chosen,
            persona_source="config" if chosen is not None else "none",
            prompt=msgs,
            refinement_plan=plan,
            reviews=reviews,
            usage=turn_model.usage,
            model_calls=turn_model.calls,
            errors=errors,
            duration_s=time.perf_counter() - started,
        )

    async def prepare(
        self, messages: MessagesInput, *, model: ChatModel | None = None
    ) -> PreparedPrompt:
        """Run only the first two stages: choose the persona and write it into the prompt.

        Adapters use this for turns that must reach the model untouched apart from the persona
        (tool calls, images, streaming). Unchanged messages are the very objects passed in.
        """
        msgs = normalize_messages(messages)
        errors: list[StageError] = []
        with self.telemetry.span(
            f"{semconv.SPAN_STAGE_PREFIX}prepare", {semconv.PP_STAGE: "prepare"}
        ) as span:
            with recording_scope(span.recording):  # tracing off: no inner stage spans either
                prepared = await self._prepare(msgs, self._turn_model(model), errors)
            span.set(semconv.PP_PERSONA_NAME, prepared.persona.name if prepared.persona else None)
            return prepared

    async def check(
        self,
        text: str,
        messages: MessagesInput | None = None,
        *,
        model: ChatModel | None = None,
    ) -> list[Finding]:
        """Run only the guard stage's detectors (``check_response``) on a text you already have.

        Adapters use this to guard text made outside a turn (a Semantic Kernel function result).
        Calling it is the request, so the detectors run whatever ``guard`` is set to; findings are
        returned, never acted on (``resolve_findings`` is not called). A detector that raises is
        recorded on the stage span and skipped.

        :param text: the text to check.
        :param messages: the conversation the text answers (default: none).
        :param model: the model detectors may use to confirm a finding (default: the pipeline's).
        :return: every finding, in detector order; empty when the text is clean.
        """
        msgs = normalize_messages(messages) if messages is not None else []
        config, turn_model = self.config, self._turn_model(model)
        persona = config.persona if isinstance(config.persona, Persona) else None
        if config.persona_mode == "none":
            persona = None

        if config.guard == "off":  # calling check() is the request to look
            config = config.model_copy(update={"guard": "monitor"})
        return await self._check_stage(msgs, text, persona, config, turn_model, [])

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

        Adapters use this for text made outside a turn, such as a team member's message. Nothing
        is raised: a ``block`` resolution is returned for the caller to act on.

        :return: the resolution, or None when no plugin decided (or one raised: recorded on the
            stage span).
        """
        msgs = normalize_messages(messages) if messages is not None else []
        if persona is None and isinstance(self.config.persona, Persona):
            persona = self.config.persona
        return await self._resolve_stage(
            msgs, text, list(findings), list(candidates), persona, self._turn_model(model), []
        )

    async def _check_stage(
        self,
        msgs: list[Message],
        text: str,
        persona: Persona | None,
        config: PipelineConfig,
        model: TurnModel,
        errors: list[StageError],
    ) -> list[Finding]:
        async def check(span: SafeSpan) -> list[Finding]:
            produced = self.pm.hook.check_response(
                messages=msgs, response=text, persona=persona, config=config, model=model
            )
            found = _flatten(await _gather(produced))
            for finding in found:
                span.event(
                    semconv.GEN_AI_EVALUATION_RESULT_EVENT,
                    {
                        semconv.GEN_AI_EVALUATION_NAME: finding.detector,
                        semconv.GEN_AI_EVALUATION_SCORE_VALUE: finding.score,
                        semconv.GEN_AI_EVALUATION_SCORE_LABEL: finding.severity,
                        semconv.GEN_AI_EVALUATION_EXPLANATION: finding.message,
                    },
                )
            span.set(semconv.PP_FINDINGS_COUNT, len(found))
            return found

        findings: list[Finding] = await self._stage("check_response", errors, check) or []
        for finding in findings:
            self.metrics.finding(finding.detector, finding.severity)
        return findings

    async def _resolve_stage(
        self,
        msgs: list[Message],
        text: str,
        findings: list[Finding],
        candidates: list[Candidate],
        persona: Persona | None,
        model: TurnModel,
        errors: list[StageError],
    ) -> Resolution | None:
        async def resolve(span: SafeSpan) -> Resolution | None:
            resolution: Resolution | None = await _resolve(
                self.pm.hook.resolve_findings(
                    messages=msgs,
                    response=text,
                    findings=findings,
                    candidates=candidates,
                    persona=persona,
                    config=self.config,
                    model=model,
                )
            )
            if resolution is not None:
                span.set(semconv.PP_ACTION, resolution.action)
            return resolution

        result: Resolution | None = await self._stage("resolve_findings", errors, resolve)
        return result

    async def run(
        self, messages: MessagesInput, *, model: ChatModel | None = None, **settings: Any
    ) -> TurnResult:
        """Run one turn and return everything it produced.

        :param messages: the conversation (a string is one user message).
        :param model: use this model for the turn instead of the pipeline's (adapters pass a view
            of the framework client bound to the call's cancellation token).
        :param settings: generation settings for this turn's candidate calls.
        """
        msgs = normalize_messages(messages)
        started = time.perf_counter()
        config = self.config
        turn_model = self._turn_model(model)
        errors: list[StageError] = []
        turn_attributes = {
            semconv.GEN_AI_OPERATION_NAME: semconv.OP_INVOKE_WORKFLOW,
            semconv.GEN_AI_REQUEST_MODEL: turn_model.model_name,
            semconv.PP_PERSONA_MODE: config.persona_mode,
            semconv.PP_ENSEMBLE: config.ensemble,
            semconv.PP_REFINE: config.refine,
            semconv.PP_GUARD: config.guard,
        }
        with self.telemetry.span(semconv.SPAN_TURN, turn_attributes) as turn_span:
            turn_span.set_content(
                semconv.GEN_AI_INPUT_MESSAGES,
                lambda: genai_messages(msgs),
            )
            with recording_scope(turn_span.recording):
                result = await self._turn(msgs, turn_model, settings, errors)
            result.duration_s = time.perf_counter() - started
            turn_span.set_many(
                {
                    semconv.GEN_AI_AGENT_NAME: result.persona.name if result.persona else None,
                    semconv.PP_PERSONA_NAME: result.persona.name if result.persona else None,
                    semconv.PP_PERSONA_SOURCE: result.persona_source,
                    semconv.PP_CHOSEN: result.chosen,
                    semconv.PP_MODEL_CALLS: result.model_calls,
                    semconv.GEN_AI_USAGE_INPUT_TOKENS: result.usage.input_tokens,
                    semconv.GEN_AI_USAGE_OUTPUT_TOKENS: result.usage.output_tokens,
                    semconv.PP_FINDINGS_COUNT: len(result.findings),
                    semconv.PP_ACTION: result.action,
                }
            )
            turn_span.set_content(semconv.GEN_AI_OUTPUT_MESSAGES, lambda: genai_output(result.text))
            result.errors = list(errors)  # observers see the turn's recovered failures
            await self._stage(
                "on_turn_complete",
                errors,
                lambda span: self.pm.hook.on_turn_complete(result=result, config=config),
            )
            result.errors = list(errors)
            return result

    async def _stage(
        self,
        name: str,
        errors: list[StageError],
        body: Callable[[SafeSpan], Any],
    ) -> Any:
        """Run one stage in its own span; a plugin's exception is recorded and the stage skipped."""
        started = time.perf_counter()
        with self.telemetry.span(
            f"{semconv.SPAN_STAGE_PREFIX}{name}", {semconv.PP_STAGE: name}
        ) as span:
            try:
                return await _resolve(body(span))
            except (GuardrailViolation, ModelCallError):
                raise
            except Exception as exc:
                errors.append(
                    StageError(
                        stage=name, error=str(exc) or repr(exc), error_type=type(exc).__name__
                    )
                )
                span.error(exc)
                span.event(
                    semconv.PP_STAGE_ERROR_EVENT,
                    {semconv.PP_STAGE: name, semconv.ERROR_TYPE: type(exc).__name__},
                )
                return None
            finally:
                self.metrics.stage(name, time.perf_counter() - started)

    async def _prepare(
        self, msgs: list[Message], model: TurnModel, errors: list[StageError]
    ) -> PreparedPrompt:
        config, hook = self.config, self.pm.hook

        # 1. choose the persona
        async def select(span: SafeSpan) -> PersonaChoice | None:
            choice: PersonaChoice | None = await _resolve(
                hook.select_persona(
                    messages=msgs, config=config, model=model, personas=self.personas
                )
            )
            if choice is not None:
                span.set(semconv.PP_PERSONA_NAME, choice.persona.name if choice.persona else None)
                span.set(semconv.PP_PERSONA_SOURCE, choice.source)
            return choice

        choice = await self._stage("select_persona", errors, select)
        if choice is None:
            configured = config.persona if isinstance(config.persona, Persona) else None
            use_config = config.persona_mode != "none" and configured is not None
            choice = PersonaChoice(
                persona=configured if use_config else None,
                source="config" if use_config else "none",
                note="no plugin chose a persona; using the configured one" if use_config else None,
            )
        persona = choice.persona

        # 2. write it into the prompt
        async def inject(span: SafeSpan) -> tuple[str, list[Message]] | None:
            if persona is None:
                return None
            text = hook.persona_system_prompt(persona=persona, config=config)
            if not text:
                return None
            span.set_content(semconv.GEN_AI_SYSTEM_INSTRUCTIONS, lambda: genai_instructions(text))
            injected = hook.inject_persona(
                messages=msgs, system_prompt=text, config=config, model=model
            )
            return text, list(injected) if injected is not None else msgs

        injected = await self._stage("inject_persona", errors, inject)
        system_prompt, prompt = injected if injected else (None, msgs)
        return PreparedPrompt.model_construct(
            persona=persona,
            persona_source=choice.source,
            persona_note=choice.note,
            system_prompt=system_prompt,
            prompt=prompt,
        )

    async def _turn(
        self,
        msgs: list[Message],
        model: TurnModel,
        settings: dict[str, Any],
        errors: list[StageError],
    ) -> TurnResult:
        config, hook = self.config, self.pm.hook
        prepared = await self._prepare(msgs, model, errors)
        persona, prompt = prepared.persona, prepared.prompt

        # 3. produce candidates
        async def generate(span: SafeSpan) -> list[Candidate]:
            produced = _flatten(
                hook.generate_candidates(
                    messages=msgs,
                    prompt=prompt,
                    persona=persona,
                    config=config,
                    model=model,
                    settings=dict(settings),
                )
            )
            found = [c for c in await _gather(produced) if c]
            span.set(semconv.PP_CANDIDATE_COUNT, len(found))
            return found

        candidates: list[Candidate] = (
            await self._stage("generate_candidates", errors, generate) or []
        )
        if not candidates:
            # No plugin produced a candidate (or the stage failed): answer the prompt directly.
            candidates = [
                await complete_candidate("direct", model, prompt, dict(settings), persona=persona)
            ]
        usable = [c for c in candidates if c.ok]
        for candidate in candidates:
            for note in candidate.notes:
                errors.append(
                    StageError(
                        stage="generate_candidates",
                        error=f"candidate {candidate.name!r}: {note}",
                        error_type="CandidateNote",
                    )
                )
            if candidate.error:
                errors.append(
                    StageError(
                        stage="generate_candidates",
                        error=f"candidate {candidate.name!r}: {candidate.error}",
                        error_type="CandidateError",
                    )
                )
        if not usable:
            cause = next((c.exception for c in candidates if c.exception is not None), None)
            raise ModelCallError(
                "every candidate failed: "
                + "; ".join(f"{c.name}: {c.error}" for c in candidates)
                + ". The conversation is kept on this error's `messages`.",
                messages=msgs,
                errors=[c.error for c in candidates],
            ) from cause

        # 4. choose among them
        judgement: Judgement | None = None
        chosen = usable[0]
        if len(usable) > 1:
            self.extract_answers(_last_user_text(msgs), usable)

            async def judge(span: SafeSpan) -> Judgement | None:
                verdict: Judgement | None = await _resolve(
                    hook.judge_candidates(
                        messages=msgs,
                        candidates=usable,
                        persona=persona,
                        config=config,
                        model=model,
                    )
                )
                if verdict is not None:
                    span.set_many(
                        {
                            semconv.GEN_AI_EVALUATION_NAME: "judge",
                            semconv.GEN_AI_EVALUATION_SCORE_LABEL: verdict.chosen,
                            semconv.GEN_AI_EVALUATION_SCORE_VALUE: 1.0
                            if verdict.consistent
                            else 0.0,
                            semconv.GEN_AI_EVALUATION_EXPLANATION: verdict.reason,
                            semconv.PP_CHOSEN: verdict.chosen,
                            semconv.PP_JUDGE_CONSISTENT: verdict.consistent,
                            semconv.PP_JUDGE_FALLBACK: verdict.fallback,
                            semconv.PP_JUDGE_CALLS: verdict.model_calls,
                        }
                    )
                    for v in verdict.verdicts:
                        span.event(
                            semconv.GEN_AI_EVALUATION_RESULT_EVENT,
                            {
                                semconv.GEN_AI_EVALUATION_NAME: "judge_verdict",
                                semconv.GEN_AI_EVALUATION_SCORE_LABEL: v.choice or "unreadable",
                                semconv.GEN_AI_EVALUATION_SCORE_VALUE: v.certainty,
                                semconv.PP_JUDGE_ORDER: list(v.order),
                                semconv.PP_JUDGE_ATTEMPT: v.attempt,
                            },
                        )
                return verdict

            judgement = await self._stage("judge_candidates", errors, judge)
            if judgement is not None:
                self.metrics.judge(
                    consistent=judgement.consistent,
                    fallback=judgement.fallback,
                    judged=judgement.model_calls > 0,
                )
                by_name = {c.name: c for c in usable}
                if judgement.chosen in by_name:
                    chosen = by_name[judgement.chosen]
                else:
                    errors.append(
                        StageError(
                            stage="judge_candidates",
                            error=f"the judge chose {judgement.chosen!r}, which is not a usable "
                            f"candidate; keeping {chosen.name!r}",
                            error_type="UnknownCandidate",
                        )
                    )
        text = chosen.text

        # 5. refine
        plan: RefinementPlan | None = None
        reviews: list[Review] = []
        if config.refine != "off" and self.refiners:

            async def refine(span: SafeSpan) -> tuple[RefinementPlan | None, str, list[Review]]:
                return await self._refine(msgs, text, persona, model, span)

            refined = await self._stage("refine", errors, refine)
            if refined is not None:
                plan, text, reviews = refined

        # 6. guard
        findings: list[Finding] = []
        action: str = "allow"
        if config.guard != "off":
            findings = await self._check_stage(msgs, text, persona, config, model, errors)
            if findings and config.guard == "enforce":
                resolution = await self._resolve_stage(
                    msgs, text, findings, candidates, persona, model, errors
                )
                if resolution is not None:
                    action = resolution.action
                    if resolution.action == "block":
                        raise GuardrailViolation(
                            resolution.reason or "the response was blocked by the guardrails",
                            findings=findings,
                            messages=msgs,
                            response=text,
                        )
                    if resolution.action != "allow" and resolution.text:
                        text = resolution.text

        return TurnResult(
            text=text,
            persona=persona,
            persona_source=prepared.persona_source,
            persona_note=prepared.persona_note,
            system_prompt=prepared.system_prompt,
            prompt=prompt,
            candidates=candidates,
            chosen=chosen.name,
            judgement=judgement,
            refinement_plan=plan,
            reviews=reviews,
            findings=findings,
            action=action,  # type: ignore[arg-type]
            usage=model.usage,
            model_calls=model.calls,
        )

    async def _refine(
        self,
        msgs: list[Message],
        draft: str,
        persona: Persona | None,
        model: TurnModel,
        span: SafeSpan,
    ) -> tuple[RefinementPlan | None, str, list[Review]]:
        """Run the reviewers the plan names, round by round, keeping the best valid draft."""
        config, hook = self.config, self.pm.hook
        available = {n: r for n, r in self.refiners.items() if n in config.refiners}
        plan = await _resolve(
            hook.plan_refinement(
                messages=msgs,
                draft=draft,
                refiners=available,
                persona=persona,
                config=config,
                model=model,
            )
        )
        reviews: list[Review] = []
        if plan is None or not plan.refiners:
            return plan, draft, reviews
        chosen = [available[name] for name in plan.refiners if name in available]

        span.set_many(
            {
                "persona_plugins.refine.plan": list(plan.refiners),
                "persona_plugins.refine.plan_source": plan.source,
                "persona_plugins.refine.parallel": plan.parallel,
            }
        )

        async def one(refiner: Refiner, current: str, round_no: int) -> Review:
            agent = f"{refiner.name}_reviewer"
            attributes = {
                semconv.GEN_AI_OPERATION_NAME: semconv.OP_INVOKE_AGENT,
                semconv.GEN_AI_AGENT_NAME: agent,
                semconv.GEN_AI_AGENT_DESCRIPTION: getattr(refiner, "description", None),
                "persona_plugins.refine.round": round_no,
            }
            with self.telemetry.span(f"{semconv.OP_INVOKE_AGENT} {agent}", attributes) as rspan:
                try:
                    call = refiner.review(msgs, current, persona, model.as_agent(agent))
                    if config.timeout_s is not None:
                        review = await asyncio.wait_for(call, timeout=config.timeout_s)
                    else:
                        review = await call
                except Exception as exc:  # the draft stays; the review says why
                    timed_out = isinstance(exc, (TimeoutError, asyncio.TimeoutError))
                    detail = str(exc) or ("timed out" if timed_out else repr(exc))
                    review = Review(refiner=refiner.name, error=f"{type(exc).__name__}: {detail}")
                    rspan.error(exc)
                rspan.set_many(
                    {
                        semconv.GEN_AI_EVALUATION_NAME: refiner.name,
                        semconv.GEN_AI_EVALUATION_SCORE_LABEL: (
                            "error" if review.error else "revise" if review.needs_change else "ok"
                        ),
                        semconv.GEN_AI_EVALUATION_EXPLANATION: review.feedback or review.error,
                    }
                )
            return review.model_copy(update={"round": round_no, "refiner": refiner.name})

        for round_no in range(1, config.max_rounds + 1):
            changed = False
            if plan.parallel:
                round_reviews = await asyncio.gather(*(one(r, draft, round_no) for r in chosen))
                reviews.extend(round_reviews)
                asking = [r for r in round_reviews if r.needs_change and not r.error]
                if asking:
                    merged = await _resolve(
                        hook.merge_reviews(
                            messages=msgs,
                            draft=draft,
                            reviews=asking,
                            persona=persona,
                            config=config,
                            model=model,
                        )
                    )
                    if merged and merged.strip():
                        draft, changed = merged, True
            else:
                for refiner in chosen:
                    review = await one(refiner, draft, round_no)
                    reviews.append(review)
                    if review.needs_change and not review.error and (review.revision or "").strip():
                        draft, changed = review.revision or draft, True
            if not changed:
                break
        span.set("persona_plugins.refine.reviews", len(reviews))
        self.metrics.refinement(
            config.refine,
            max((r.round for r in reviews), default=0),
            [
                (r.refiner, "error" if r.error else "revise" if r.needs_change else "ok")
                for r in reviews
            ],
        )
        return plan, draft, reviews
