"""The model as plugins see it during a turn.

:class:`TurnModel` wraps the user's :class:`~persona_plugins.ChatModel` for one turn: it applies the
configured generation settings, opens a ``chat`` span per call (named after the agent making it),
counts calls and sums token usage for the :class:`~persona_plugins.TurnResult`, and enforces the
optional per-call timeout. Every other attribute is read from the wrapped model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from persona_plugins import semconv
from persona_plugins.concurrency import with_timeout
from persona_plugins.metrics import PipelineMetrics
from persona_plugins.model import ChatModel, Completion, Message, Usage
from persona_plugins.tracing import Telemetry, genai_messages, genai_output

__all__ = ["TurnModel", "model_name"]


def model_name(model: object) -> str:
    """The name a model reports (``model_name`` or ``model``), or its class name."""
    for attr in ("model_name", "model"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(model).__name__


class _Tally:
    """Calls and tokens of one turn, shared by every view of its model."""

    __slots__ = ("calls", "input_tokens", "output_tokens", "summed")

    def __init__(self) -> None:
        self.calls = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.summed = False  # whether any usage was added

    def add(self, usage: Usage) -> None:
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        self.summed = True

    @property
    def usage(self) -> Usage:
        if not self.summed:
            return Usage()
        tokens_in, tokens_out = self.input_tokens, self.output_tokens
        if type(tokens_in) is int and type(tokens_out) is int:  # validating is quicker then
            return Usage(input_tokens=tokens_in, output_tokens=tokens_out)
        # as ``Usage.__add__`` does: the counts as the models reported them
        return Usage.model_construct(input_tokens=tokens_in, output_tokens=tokens_out)


class TurnModel:
    """A :class:`ChatModel` view of the user's model for one turn, shared by every plugin.

    This is the type hooks receive as ``model``: call ``model.complete(...)`` like any chat model,
    and ``model.as_agent("my_checker")`` for a view whose calls are traced as made by that agent
    (a ``gen_ai.agent.name`` of its own). Code that may be called directly with a plain
    :class:`ChatModel` turns it into one with :meth:`TurnModel.wrap`.
    """

    _untraced: Telemetry | None = None

    def __init__(
        self,
        inner: ChatModel,
        telemetry: Telemetry,
        *,
        settings: dict[str, Any] | None = None,
        timeout_s: float | None = None,
        agent: str | None = None,
        tally: _Tally | None = None,
        metrics: PipelineMetrics | None = None,
    ):
        self.inner = inner
        self._metrics = metrics
        self.agent_name = agent
        self._telemetry = telemetry
        self._settings = dict(settings) if settings else {}
        self._timeout_s = timeout_s
        self._tally = tally or _Tally()
        self.model_name = model_name(inner)

    @classmethod
    def wrap(cls, model: ChatModel) -> TurnModel:
        """``model`` itself when it is a :class:`TurnModel`, else a view of it for direct calls
        (outside a turn: traced on the global tracer provider, counted in no result)."""
        if isinstance(model, TurnModel):
            return model
        if cls._untraced is None:
            cls._untraced = Telemetry()
        return cls(model, cls._untraced, metrics=None)

    def as_agent(self, name: str) -> TurnModel:
        """The same model, with its calls traced as made by the agent ``name``."""
        view = object.__new__(TurnModel)
        view.__dict__.update(self.__dict__)  # the same settings, tally and metrics
        view.agent_name = name
        return view

    @property
    def calls(self) -> int:
        return self._tally.calls

    @property
    def usage(self) -> Usage:
        return self._tally.usage

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes TurnModel does not define: capabilities of the inner model.
        return getattr(self.inner, name)

    async def complete(self, messages: Sequence[Message], **settings: Any) -> Completion:
        merged = {**self._settings, **settings} if settings else self._settings

        def attributes() -> dict[str, Any]:
            return {
                semconv.GEN_AI_OPERATION_NAME: semconv.OP_CHAT,
                semconv.GEN_AI_REQUEST_MODEL: self.model_name,
                semconv.GEN_AI_PROVIDER_NAME: getattr(self.inner, "provider_name", None),
                semconv.GEN_AI_AGENT_NAME: self.agent_name,
                semconv.GEN_AI_REQUEST_MAX_TOKENS: merged.get("max_tokens"),
                semconv.GEN_AI_REQUEST_TEMPERATURE: merged.get("temperature"),
            }

        self._tally.calls += 1
        metrics = self._metrics
        if metrics is None:
            return await self._traced_call(messages, merged, attributes)
        started = time.perf_counter()
        try:
            completion = await self._traced_call(messages, merged, attributes)
        except Exception as exc:
            metrics.model_call(
                model=self.model_name,
                agent=self.agent_name,
                seconds=time.perf_counter() - started,
                input_tokens=0,
                output_tokens=0,
                error=type(exc).__qualname__,
            )
            raise
        metrics.model_call(
            model=self.model_name,
            agent=self.agent_name,
            seconds=time.perf_counter() - started,
            input_tokens=completion.usage.input_tokens,
            output_tokens=completion.usage.output_tokens,
        )
        return completion

    async def _traced_call(
        self,
        messages: Sequence[Message],
        merged: dict[str, Any],
        attributes: Callable[[], dict[str, Any]],
    ) -> Completion:
        with self._telemetry.span(f"chat {self.model_name}", attributes) as span:
            span.set_content(
                semconv.GEN_AI_INPUT_MESSAGES,
                lambda: genai_messages(messages),
            )
            call = self.inner.complete(list(messages), **merged)
            completion = await with_timeout(call, self._timeout_s)
            if not isinstance(completion, Completion) or not isinstance(completion.text, str):
                got = type(completion).__name__
                if isinstance(completion, Completion):
                    got = f"a Completion whose text is {type(completion.text).__name__}"
                raise TypeError(
                    f"{type(self.inner).__name__}.complete returned {got}, "
                    "expected persona_plugins.Completion (its text a string)"
                )
            self._tally.add(completion.usage)
            if not span.recording:
                return completion
            span.set_many(
                {
                    semconv.GEN_AI_RESPONSE_MODEL: completion.model,
                    semconv.GEN_AI_USAGE_INPUT_TOKENS: completion.usage.input_tokens,
                    semconv.GEN_AI_USAGE_OUTPUT_TOKENS: completion.usage.output_tokens,
                    semconv.GEN_AI_RESPONSE_FINISH_REASONS: (
                        [completion.finish_reason] if completion.finish_reason else None
                    ),
                }
            )
            span.set_content(
                semconv.GEN_AI_OUTPUT_MESSAGES,
                lambda: genai_output(completion.text, completion.finish_reason),
            )
            return completion
