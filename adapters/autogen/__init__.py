"""AutoGen AgentChat adapter.

Install with ``pip install "persona-plugins[autogen]"``.

- :class:`PersonaChatCompletionClient` wraps any AutoGen ``ChatCompletionClient`` and runs the
  persona-plugins pipeline around every text turn.
- :class:`ChatModelCompletionClient` is an AutoGen client backed by any persona-plugins
  :class:`~persona_plugins.ChatModel` (so ``AssistantAgent`` runs on the embedded model), and
  :class:`AutoGenChatModel` is the reverse.
- :class:`TeamGuardHandler` is a runtime intervention handler that runs the guardrails on a whole
  team (each member's messages, monopolization, drift from the task, discussion length).

Example::

    from autogen_agentchat.agents import AssistantAgent
    from persona_plugins.adapters.autogen import PersonaChatCompletionClient, embedded_model_client

    client = PersonaChatCompletionClient(embedded_model_client(), persona="pirate_captain")
    agent = AssistantAgent("captain", model_client=client)
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
