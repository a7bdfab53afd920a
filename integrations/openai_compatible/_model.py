from __future__ import annotations

import asyncio
import json
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from persona_plugins.errors import ModelCallError
from persona_plugins.model import Completion, Message, Usage

_PASSED = {
    "max_tokens",
    "temperature",
    "top_p",
    "seed",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "repeat_penalty",
}


class OpenAICompatibleChatModel:
    """Calls ``POST {base_url}/chat/completions`` of an OpenAI-compatible server.

    Args:
        base_url: the API root, for example ``http://127.0.0.1:8000/v1``.
        model: the model name the server expects.
        api_key: sent as a bearer token (default ``$OPENAI_API_KEY``, else none).
        timeout_s: seconds to wait for one response.
        generation: default generation settings for every call.
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
        self.generation = dict(generation or {})

    def complete_blocking(self, messages: Sequence[Message], **settings: Any) -> Completion:
        body: dict[str, Any] = {
            "model": self.model_name,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
        }
        merged = {**self.generation, **settings}
        body.update({k: v for k, v in merged.items() if k in _PASSED and v is not None})
        url = f"{self.base_url}/chat/completions"
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(
            url, data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                data = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:300]
            raise ModelCallError(
                f"{url} answered HTTP {exc.code}: {detail}", messages=messages
            ) from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ModelCallError(
                f"cannot reach the model server at {self.base_url} ({reason}); is it running?",
                messages=messages,
            ) from exc
        except json.JSONDecodeError as exc:
            raise ModelCallError(
                f"{url} did not answer with JSON ({exc})", messages=messages
            ) from exc
        try:
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise ModelCallError(
                f"{url} answered without choices[0].message: {str(data)[:200]}", messages=messages
            ) from exc
        usage = data.get("usage") or {}
        return Completion(
            text=text.strip(),
            usage=Usage(
                input_tokens=int(usage.get("prompt_tokens") or 0),
                output_tokens=int(usage.get("completion_tokens") or 0),
            ),
            finish_reason=choice.get("finish_reason"),
            model=data.get("model") or self.model_name,
        )

    async def complete(self, messages: Sequence[Message], **settings: Any) -> Completion:
        return await asyncio.to_thread(self.complete_blocking, list(messages), **settings)

    def __repr__(self) -> str:
        return f"OpenAICompatibleChatModel({self.base_url!r}, model={self.model_name!r})"
