"""AutoGen AgentChat adapter (``pip install "persona-plugins[autogen]"``): the README's *AutoGen
in ten lines* section."""

from __future__ import annotations

from persona_plugins.errors import require_extra

SUPPORTED_AUTOGEN = ">=0.7,<0.8"
require_extra("persona_plugins.adapters.autogen", "autogen", "autogen_core", "autogen_core.models")

from persona_plugins.adapters.autogen._client import (  # noqa: E402
    PersonaChatCompletionClient,
    PersonaChatCompletionClientConfig,
)
from persona_plugins.adapters.autogen._messages import (  # noqa: E402
    from_core_messages,
    to_core_messages,
)
from persona_plugins.adapters.autogen._model import (  # noqa: E402
    AutoGenChatModel,
    ChatModelCompletionClient,
    ChatModelCompletionClientConfig,
    embedded_model_client,
)
from persona_plugins.adapters.autogen._team_client import (  # noqa: E402
    TeamGuardClient,
    TeamGuardClientConfig,
)
from persona_plugins.adapters.autogen._team_guard import TeamGuardHandler  # noqa: E402

__all__ = [
    "SUPPORTED_AUTOGEN",
    "AutoGenChatModel",
    "ChatModelCompletionClient",
    "ChatModelCompletionClientConfig",
    "PersonaChatCompletionClient",
    "PersonaChatCompletionClientConfig",
    "TeamGuardClient",
    "TeamGuardClientConfig",
    "TeamGuardHandler",
    "embedded_model_client",
    "from_core_messages",
    "to_core_messages",
]
