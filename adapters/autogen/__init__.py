"""AutoGen AgentChat adapter (``pip install "persona-plugins[autogen]"``).

- :class:`PersonaChatCompletionClient` wraps any AutoGen ``ChatCompletionClient`` and runs the
  persona-plugins pipeline around every call.
- :class:`ChatModelCompletionClient`: an AutoGen client backed by any persona-plugins chat model (so
  ``AssistantAgent`` runs on the embedded model); :class:`AutoGenChatModel` is the reverse.
- :class:`TeamGuardHandler`: a runtime intervention handler that guards a whole team.
"""

from __future__ import annotations

SUPPORTED_AUTOGEN = ">=0.7,<0.8"

try:
    import autogen_core
    import autogen_core.models  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised with autogen hidden from sys.modules
    from persona_plugins.errors import MissingExtraError

    raise MissingExtraError(
        "persona_plugins.adapters.autogen", "autogen", missing=exc.name
    ) from exc

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
from persona_plugins.adapters.autogen._team_guard import TeamGuardHandler  # noqa: E402

__all__ = [
    "SUPPORTED_AUTOGEN",
    "AutoGenChatModel",
    "ChatModelCompletionClient",
    "ChatModelCompletionClientConfig",
    "PersonaChatCompletionClient",
    "PersonaChatCompletionClientConfig",
    "TeamGuardHandler",
    "embedded_model_client",
    "from_core_messages",
    "to_core_messages",
]
