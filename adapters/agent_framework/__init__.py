"""Microsoft Agent Framework adapter (``pip install "persona-plugins[agent-framework]"``): the
README's *Agent Framework* section."""

from __future__ import annotations

SUPPORTED_AGENT_FRAMEWORK = ">=1.23,<2"

try:
    import agent_framework
    import agent_framework.observability  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised with agent_framework hidden
    from persona_plugins.errors import MissingExtraError

    raise MissingExtraError(
        "persona_plugins.adapters.agent_framework", "agent-framework", missing=exc.name
    ) from exc

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
