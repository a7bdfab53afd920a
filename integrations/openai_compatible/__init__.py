"""A :class:`~persona_plugins.ChatModel` for any OpenAI-compatible chat completions server.

Ollama, vLLM, LM Studio and llama.cpp's own server (``python -m llama_cpp.server``) all speak this
protocol. It uses only the standard library, so no extra is needed.

Example::

    from persona_plugins.integrations.openai_compatible import OpenAICompatibleChatModel

    model = OpenAICompatibleChatModel("http://127.0.0.1:8000/v1", model="smollm2")
"""

from persona_plugins.integrations.openai_compatible._model import OpenAICompatibleChatModel

__all__ = ["OpenAICompatibleChatModel"]
