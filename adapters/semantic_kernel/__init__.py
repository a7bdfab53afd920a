"""Semantic Kernel adapter (``pip install "persona-plugins[semantic-kernel]"``): the README's
*Semantic Kernel* section. Importing it imports Semantic Kernel; ``import persona_plugins`` never
does."""

from __future__ import annotations

from persona_plugins.errors import require_extra

SUPPORTED_SEMANTIC_KERNEL = ">=1.30,<2"
require_extra(
    "persona_plugins.adapters.semantic_kernel",
    "semantic-kernel",
    "semantic_kernel",
    "semantic_kernel.connectors.ai.chat_completion_client_base",
)

from persona_plugins.adapters.semantic_kernel._filters import (  # noqa: E402
    FINDINGS_KEY,
    RESOLUTION_KEY,
    PersonaFunctionInvocationFilter,
    PersonaPromptRenderingFilter,
)
from persona_plugins.adapters.semantic_kernel._messages import (  # noqa: E402
    escape_prompt_text,
    from_core_messages,
    render_prompt,
    to_core_messages,
)
from persona_plugins.adapters.semantic_kernel._model import (  # noqa: E402
    ChatModelChatCompletion,
    ChatModelPromptExecutionSettings,
    SemanticKernelChatModel,
    embedded_chat_completion,
)
from persona_plugins.adapters.semantic_kernel._plugin import PersonaPlugin  # noqa: E402
from persona_plugins.adapters.semantic_kernel._service import PersonaChatCompletion  # noqa: E402

__all__ = [
    "FINDINGS_KEY",
    "RESOLUTION_KEY",
    "SUPPORTED_SEMANTIC_KERNEL",
    "ChatModelChatCompletion",
    "ChatModelPromptExecutionSettings",
    "PersonaChatCompletion",
    "PersonaFunctionInvocationFilter",
    "PersonaPlugin",
    "PersonaPromptRenderingFilter",
    "SemanticKernelChatModel",
    "embedded_chat_completion",
    "escape_prompt_text",
    "from_core_messages",
    "render_prompt",
    "to_core_messages",
]
