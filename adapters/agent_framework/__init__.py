"""Microsoft Agent Framework adapter (``pip install "persona-plugins[agent-framework]"``): the
README's *Agent Framework* section."""

from __future__ import annotations

from persona_plugins.errors import require_extra

SUPPORTED_AGENT_FRAMEWORK = ">=1.23,<2"
require_extra(
    "persona_plugins.adapters.agent_framework",
    "agent-framework",
    "agent_framework",
    "agent_framework.observability",
)

from persona_plugins.adapters.agent_framework._client import (  # noqa: E402
    AgentFrameworkChatModel,
    ChatModelChatClient,
    embedded_chat_client,
)
from persona_plugins.adapters.agent_framework._middleware import (  # noqa: E402
    PersonaMiddleware,
    TeamGuardMiddleware,
)

__all__ = [
    "SUPPORTED_AGENT_FRAMEWORK",
    "AgentFrameworkChatModel",
    "ChatModelChatClient",
    "PersonaMiddleware",
    "TeamGuardMiddleware",
    "embedded_chat_client",
]
