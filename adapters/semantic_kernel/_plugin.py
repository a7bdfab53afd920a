"""``PersonaPlugin``: persona-plugins as a Semantic Kernel plugin, with its filters."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any

import pluggy
from opentelemetry.trace import TracerProvider
from semantic_kernel.connectors.ai.chat_completion_client_base import ChatCompletionClientBase
from semantic_kernel.filters.filter_types import FilterTypes
from semantic_kernel.functions.kernel_arguments import KernelArguments
from semantic_kernel.functions.kernel_function import KernelFunction
from semantic_kernel.functions.kernel_function_decorator import kernel_function
from semantic_kernel.kernel import Kernel

from persona_plugins.adapter_kit import findings_report
from persona_plugins.adapters.semantic_kernel._filters import (
    PersonaFunctionInvocationFilter,
    PersonaPromptRenderingFilter,
    is_prompt_function,
)
from persona_plugins.adapters.semantic_kernel._model import SemanticKernelChatModel
from persona_plugins.adapters.semantic_kernel._service import PersonaChatCompletion
from persona_plugins.config import PipelineConfig
from persona_plugins.model import Completion, Message
from persona_plugins.pipeline import PersonaPipeline
from persona_plugins.results import Finding, TurnResult

# Parameters SK fills in itself; the model never sees them in a function's schema.
_HIDDEN = {"include_in_function_choices": False}
_Kernel = Annotated[Kernel, _HIDDEN]
_Arguments = Annotated[KernelArguments, _HIDDEN]


class _KernelServiceModel:
    """A placeholder model: each call runs on the chat service of the kernel that invokes it."""

    model_name = "semantic-kernel-service"
    provider_name = "semantic_kernel"

    async def complete(self, messages: Sequence[Message], **settings: Any) -> Completion:
        raise RuntimeError(
            "PersonaPlugin runs on the chat service of the kernel that invokes it; call its "
            "functions through a kernel (kernel.invoke(...)), not its pipeline directly"
        )


class PersonaPlugin:
    """persona-plugins as a Semantic Kernel plugin: kernel functions (``answer``, ``ensemble``,
    ``refine``, ``check_bias``) and the kernel filters it installs when added to a kernel (the
    README's *Semantic Kernel* section).

    Args:
        config: a :class:`~persona_plugins.PipelineConfig` or a mapping of its fields.
        plugin_manager, tracer_provider: as for :class:`~persona_plugins.PersonaPipeline`.
        service_id: run on this kernel service instead of the one SK would choose.
        install_filters: install the filters when added to a kernel (default True).
        guard_function: which functions' results the invocation filter checks (default: prompt
            functions).
        **overrides: config fields on top of ``config`` (``persona="historian"``).

    Attributes:
        pipeline: the :class:`~persona_plugins.PersonaPipeline` of ``answer`` and the filters.
        last_result: the :class:`~persona_plugins.TurnResult` of the latest answer, ensemble or
            refinement; ``last_findings``: the findings of the latest ``check_bias``.
    """

    name = "persona"

    def __init__(
        self,
        config: PipelineConfig | Mapping[str, Any] | None = None,
        *,
        plugin_manager: pluggy.PluginManager | None = None,
        tracer_provider: TracerProvider | None = None,
        service_id: str | None = None,
        install_filters: bool = True,
        guard_function: Callable[[KernelFunction], bool] = is_prompt_function,
        **overrides: Any,
    ):
        # The pipeline and its variants (changes on top of the overrides).
        self._build = functools.partial(
            PersonaPipeline,
            _KernelServiceModel(),
            config,
            plugin_manager=plugin_manager,
            tracer_provider=tracer_provider,
            **overrides,
        )
        self.pipeline: PersonaPipeline = self._build()
        self.service_id = service_id
        self.install_filters = install_filters
        self.prompt_filter = PersonaPromptRenderingFilter(self.pipeline)
        self.invocation_filter = PersonaFunctionInvocationFilter(
            self.pipeline, guard_function=guard_function, prompt_filter=self.prompt_filter
        )
        self.last_result: TurnResult | None = None
        self.last_findings: list[Finding] = []
        self._variants: dict[str, PersonaPipeline] = {}
        self._kernels: list[Kernel] = []

    def _variant(self, name: str, **changes: Any) -> PersonaPipeline:
        """The pipeline with a stage switched on (made on first use; ``pipeline`` if it is on)."""
        if all(getattr(self.pipeline.config, k) == v for k, v in changes.items()):
            return self.pipeline
        if name not in self._variants:
            self._variants[name] = self._build(**changes)
        return self._variants[name]

    # -- kernel functions ------------------------------------------------------------------------

    @kernel_function(
        name="answer",
        description="Answer a question or request in the voice of the configured persona.",
    )
    async def answer(
        self,
        question: Annotated[str, "The question or request to answer."],
        kernel: _Kernel,
        arguments: _Arguments,
    ) -> Annotated[str, "The persona's answer."]:
        return self._kept(await self.pipeline.run(question, model=self._model(kernel, arguments)))

    @kernel_function(
        name="ensemble",
        description=(
            "Answer a question twice, as the persona and neutrally, and let an impartial judge "
            "pick the better answer (Jekyll & Hyde ensembling)."
        ),
    )
    async def ensemble(
        self,
        question: Annotated[str, "The question to answer."],
        kernel: _Kernel,
        arguments: _Arguments,
    ) -> Annotated[str, "The chosen answer."]:
        pipeline = self._variant("ensemble", ensemble="jekyll_hyde")
        return self._kept(await pipeline.run(question, model=self._model(kernel, arguments)))

    @kernel_function(
        name="refine",
        description=(
            "Improve a response to a question with reviewer agents that check its facts, its "
            "fit to the persona and its coherence."
        ),
    )
    async def refine(
        self,
        question: Annotated[str, "The question the response answers."],
        response: Annotated[str, "The response to improve."],
        kernel: _Kernel,
        arguments: _Arguments,
    ) -> Annotated[str, "The refined response."]:
        strategy = self.pipeline.config.refine
        pipeline = self._variant("refine", refine=strategy if strategy != "off" else "adaptive")
        model = self._model(kernel, arguments)
        return self._kept(await pipeline.refine(question, response, model=model))

    @kernel_function(
        name="check_bias",
        description=(
            "Check a text for persona-induced bias: refusals in character, stereotypes, "
            "toxicity and contradictions of the persona."
        ),
    )
    async def check_bias(
        self,
        text: Annotated[str, "The text to check."],
        kernel: _Kernel,
        arguments: _Arguments,
        question: Annotated[str, "The question the text answers, if any."] = "",
    ) -> Annotated[str, 'JSON: {"clean": true|false, "findings": [...]}.']:
        findings = await self.pipeline.check(
            text, question or None, model=self._model(kernel, arguments)
        )
        self.last_findings = findings
        return findings_report(findings)

    def _kept(self, turn: TurnResult) -> str:
        self.last_result = turn
        return turn.text

    def _model(self, kernel: Kernel, arguments: KernelArguments | None) -> SemanticKernelChatModel:
        """A view of the chat service SK would choose (a PersonaChatCompletion's inner one)."""
        if self.service_id:
            service: Any = kernel.get_service(self.service_id, type=ChatCompletionClientBase)
            settings = service.instantiate_prompt_execution_settings(service_id=self.service_id)
        else:
            service, settings = kernel.select_ai_service(
                arguments=arguments, type=ChatCompletionClientBase
            )
        if isinstance(service, PersonaChatCompletion):
            service = service.inner
        return SemanticKernelChatModel(service, settings)

    # -- filters ---------------------------------------------------------------------------------

    @property
    def filters(self) -> list[tuple[FilterTypes, Any]]:
        """The filters this plugin installs in a kernel, as ``(filter type, filter)`` pairs."""
        chosen: list[tuple[FilterTypes, Any]] = []
        if self.pipeline.config.persona_mode != "none":
            chosen.append((FilterTypes.PROMPT_RENDERING, self.prompt_filter))
        if self.pipeline.config.guard != "off":
            chosen.append((FilterTypes.FUNCTION_INVOCATION, self.invocation_filter))
        return chosen

    def added_to_kernel(self, kernel: Kernel) -> None:
        """Called by ``kernel.add_plugin``: install the filters (once per kernel)."""
        if not self.install_filters or any(k is kernel for k in self._kernels):
            return
        for filter_type, kernel_filter in self.filters:
            kernel.add_filter(filter_type, kernel_filter)
        self._kernels.append(kernel)

    def remove_filters(self, kernel: Kernel | None = None) -> None:
        """Take this plugin's filters out of ``kernel`` (default: every kernel it was added to);
        the kernel functions stay."""
        targets = [k for k in self._kernels if kernel is None or k is kernel]
        for target in targets:
            for filter_type, kernel_filter in self.filters:
                target.remove_filter(filter_type, filter_id=id(kernel_filter))
            self._kernels = [k for k in self._kernels if k is not target]
