"""persona-plugins: personas, Jekyll & Hyde ensembling, refinement and bias guardrails as hooks.

The core imports no agent framework; adapters live in ``persona_plugins.adapters.<framework>``.

Example::

    from persona_plugins import PersonaPipeline
    from persona_plugins.integrations.llama_cpp import LlamaCppChatModel

    pipeline = PersonaPipeline(LlamaCppChatModel(), persona="math_teacher")
    result = pipeline.run_sync("What is 12 * 7?")
    print(result.text)
"""

from __future__ import annotations

__version__ = "0.1.0"

from persona_plugins.config import JudgeSettings, PipelineConfig
from persona_plugins.errors import (
    ConfigError,
    GuardrailViolation,
    MessageError,
    MissingExtraError,
    ModelCallError,
    ModelLoadError,
    PersonaError,
    PersonaPluginsError,
    PluginError,
)
from persona_plugins.hookspecs import hookimpl, hookspec
from persona_plugins.model import ChatModel, Completion, Message, Usage
from persona_plugins.persona import Persona, resolve_persona
from persona_plugins.pipeline import PersonaPipeline
from persona_plugins.plugins import DEFAULT_PLUGINS, get_plugin_manager, new_plugin_manager
from persona_plugins.results import (
    Candidate,
    Detector,
    Finding,
    GuardOutcome,
    Judgement,
    PersonaChoice,
    RefinementPlan,
    Refiner,
    Resolution,
    Review,
    StageError,
    TurnResult,
    Verdict,
)
from persona_plugins.turn_model import TurnModel

__all__ = [
    "DEFAULT_PLUGINS",
    "Candidate",
    "ChatModel",
    "Completion",
    "ConfigError",
    "Detector",
    "Finding",
    "GuardOutcome",
    "GuardrailViolation",
    "JudgeSettings",
    "Judgement",
    "Message",
    "MessageError",
    "MissingExtraError",
    "ModelCallError",
    "ModelLoadError",
    "Persona",
    "PersonaChoice",
    "PersonaError",
    "PersonaPipeline",
    "PersonaPluginsError",
    "PipelineConfig",
    "PluginError",
    "RefinementPlan",
    "Refiner",
    "Resolution",
    "Review",
    "StageError",
    "TurnModel",
    "TurnResult",
    "Usage",
    "Verdict",
    "__version__",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
    "new_plugin_manager",
    "resolve_persona",
]
