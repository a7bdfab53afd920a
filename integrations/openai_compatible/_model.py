from __future__ import annotations

import asyncio
import http.client
import json
import os
import socket
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from persona_plugins.config import EXTRA_SETTINGS, check_generation_settings
from persona_plugins.errors import ConfigError, ModelCallError
from persona_plugins.model import Completion, Message, Usage

#: Keys of the request body this class writes itself; ``extra`` may not replace them.
_RESERVED = ("model", "messages", "stream")


def _checked(settings: dict[str, Any] | None, where: str) -> dict[str, Any]:
    """The settings checked by name (one list for every model, in the core), and ``extra``
    checked only for the request keys this class owns."""
    checked = check_generation_settings(settings, where=where)
    taken = [key for key in checked.get(EXTRA_SETTINGS) or {} if key in _RESERVED]
    if taken:
        raise ConfigError(
            f"{where}: '{EXTRA_SETTINGS}' may not set {', '.join(map(repr, taken))}: "
            "OpenAICompatibleChatModel writes 'model' (model=...), 'messages' and 'stream' itself"
        )
    return checked


class OpenAICompatibleChatModel:
    """Calls ``POST {base_url}/chat/completions`` of an OpenAI-compatible server.

    Args:
        base_url: the API root, for example ``http://127.0.0.1:8000/v1``.
        model: the model name the server expects.
        api_key: sent as a bearer token (default ``$OPENAI_API_KEY``, else none).
        timeout_s: seconds to wait for one response.
        generation: default generation settings for every call: the names of
            :data:`~persona_plugins.config.GENERATION_SETTINGS`, and an ``extra`` mapping whose
            keys go into the request body as they are (settings only this server knows, such as
            ``{"mirostat": 2}`` or ``{"chat_template_kwargs": {...}}``).

    Raises:
        ConfigError: an unknown setting name (here or in a call's settings), naming the closest
            known one; or an ``extra`` key that would replace ``model``, ``messages`` or
            ``stream``.
    """

    provider_name = "openai_compatible"
    supports_multiple_system_messages = True

    def __init__(
        self,
        base_url: str,
        model: str = "default",
        *,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        generation: dict[str, Any] | None = None,
    ):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.model_name = model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.timeout_s = timeout_s
        self.generation = _checked(generation, "OpenAICompatibleChatModel(generation=...)")

    def complete_blocking(self, messages: Sequence[Message], **settings: Any) -> Completion:
        body: dict[str, Any] = {
            "model": self.model_name,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
        }
        call = _checked(settings, "OpenAICompatibleChatModel.complete() settings")
        merged = {**self.generation, **call}
        extra = {**(self.generation.get(EXTRA_SETTINGS) or {}), **(call.get(EXTRA_SETTINGS) or {})}
        body.update({k: v for k, v in merged.items() if k != EXTRA_SETTINGS and v is not None})
        body.update(extra)  # unchecked by design: the server judges its own settings
        url = f"{self.base_url}/chat/completions"
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(
            url, data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:300]
            raise ModelCallError(
                f"{url} answered HTTP {exc.code}: {detail}", messages=messages
            ) from exc
        except TimeoutError as exc:
            raise ModelCallError(
                f"the model server at {self.base_url} did not answer within {self.timeout_s} s",
                messages=messages,
            ) from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, (TimeoutError, socket.timeout)):
                raise ModelCallError(
                    f"the model server at {self.base_url} did not answer within {self.timeout_s} s",
                    messages=messages,
                ) from exc
            raise ModelCallError(
                f"cannot reach the model server at {self.base_url} ({exc.reason}); is it running?",
                messages=messages,
            ) from exc
        except (ConnectionError, http.client.HTTPException) as exc:
            raise ModelCallError(
                f"the model server at {self.base_url} broke off the answer "
                f"({type(exc).__name__}: {exc})",
                messages=messages,
            ) from exc
        return self._parse(url, raw, messages)

    def _parse(self, url: str, raw: bytes, messages: Sequence[Message]) -> Completion:
        """Turn the response body into a Completion; any malformation is a ModelCallError."""
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelCallError(
                f"{url} did not answer with JSON text ({exc})", messages=messages
            ) from exc
        try:
            choice = data["choices"][0]
            message = choice["message"]
        except (KeyError, IndexError, TypeError) as exc:
            raise ModelCallError(
                f"{url} answered without choices[0].message: {str(data)[:200]}", messages=messages
            ) from exc
        try:
            text = message.get("content")
            if text is None:
                text = ""
            if not isinstance(text, str):
                raise TypeError(f"message.content is a {type(text).__name__}, not text")
            usage = data.get("usage") or {}
            reason = choice.get("finish_reason")
            return Completion(
                text=text.strip(),
                usage=Usage(
                    input_tokens=int(usage.get("prompt_tokens") or 0),
                    output_tokens=int(usage.get("completion_tokens") or 0),
                ),
                finish_reason=reason if isinstance(reason, str) else None,
                model=data.get("model") if isinstance(data.get("model"), str) else self.model_name,
            )
        except (TypeError, AttributeError, ValueError) as exc:
            raise ModelCallError(
                f"{url} answered in an unexpected shape ({type(exc).__name__}: {exc}): "
                f"{raw[:200]!r}",
                messages=messages,
            ) from exc

    async def complete(self, messages: Sequence[Message], **settings: Any) -> Completion:
        return await asyncio.to_thread(self.complete_blocking, list(messages), **settings)

    def __repr__(self) -> str:
        return f"OpenAICompatibleChatModel({self.base_url!r}, model={self.model_name!r})"
