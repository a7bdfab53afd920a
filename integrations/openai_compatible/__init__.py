"""A :class:`~persona_plugins.ChatModel` for any OpenAI-compatible chat completions server.

Ollama, vLLM, LM Studio and llama.cpp's own server (``python -m llama_cpp.server``) all speak this
protocol. It needs the ``openai-compatible`` extra (httpx)::

    pip install "persona-plugins[openai-compatible]"

Calls are async HTTP requests: cancelling a call closes its connection at once. A rate limit
(HTTP 429), a server error (500, 502, 503, 504), a reset connection or a failed connect is retried
with exponential backoff and jitter, honouring the server's ``Retry-After``.

:class:`OpenAICompatiblePool` is the same model over a fleet of servers: each call goes to the
least busy one, and a server that fails rests while the call is tried again on another.

Example::

    from persona_plugins.integrations.openai_compatible import OpenAICompatibleChatModel

    async with OpenAICompatibleChatModel("http://127.0.0.1:8000/v1", model="smollm2") as model:
        completion = await model.complete([Message.user("Hello?")])
"""

from persona_plugins.errors import require_extra

require_extra("persona_plugins.integrations.openai_compatible", "openai-compatible", "httpx")

from persona_plugins.integrations.openai_compatible._model import (  # noqa: E402
    RETRY_STATUSES,
    OpenAICompatibleChatModel,
)
from persona_plugins.integrations.openai_compatible._pool import (  # noqa: E402
    OpenAICompatiblePool,
    split_base_urls,
)

__all__ = ["RETRY_STATUSES", "OpenAICompatibleChatModel", "OpenAICompatiblePool", "split_base_urls"]
