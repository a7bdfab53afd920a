from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import math
import os
import random
import time
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx

from persona_plugins.config import EXTRA_SETTINGS, check_generation_settings
from persona_plugins.errors import ConfigError, ModelCallError
from persona_plugins.model import Completion, Message, Usage

logger = logging.getLogger("persona_plugins.integrations.openai_compatible")

#: Keys of the request body this class writes itself; ``extra`` may not replace them.
_RESERVED = ("model", "messages", "stream")

#: HTTP statuses that are tried again: rate limited (429), or the server or a proxy in front of it
#: failing for now (500, 502, 503, 504). Any other error status fails at once.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

#: Transport failures that are tried again: the connection could not be made, or the server
#: closed or reset it before answering. A server that is slow to answer (a read timeout) is not
#: asked again: it may still be working on the request.
_RETRY_ERRORS = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)


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


def _number(value: Any, name: str, *, low: float, integer: bool = False) -> Any:
    """``value`` if it is a finite number of the right kind, at least ``low``; else ConfigError."""
    kinds: tuple[type, ...] = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value):
        kind = "a whole number" if integer else "a finite number of seconds"
        raise ConfigError(f"OpenAICompatibleChatModel({name}=...) must be {kind}, got {value!r}")
    if value < low:
        raise ConfigError(
            f"OpenAICompatibleChatModel({name}=...) must be at least {low}, got {value}"
        )
    return value


def _retry_after(response: httpx.Response) -> float | None:
    """The server's ``Retry-After`` in seconds (a number of seconds or an HTTP date), if any."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds) if math.isfinite(seconds) else None


class _AttemptFailed(Exception):
    """One attempt failed: what went wrong, whether it is worth another attempt, and how long
    the server asked to wait first (``Retry-After``)."""

    def __init__(self, problem: str, *, retry: bool, wait_s: float | None = None):
        super().__init__(problem)
        self.retry = retry
        self.wait_s = wait_s


_C = TypeVar("_C", bound="Closing")


def backoff_seconds(
    failures: int, backoff_s: float, max_wait_s: float, rng: random.Random
) -> float:
    """The wait after ``failures`` failed attempts in a row: ``backoff_s * 2 ** (failures - 1)``
    (at most ``max_wait_s``), scaled by a random factor in [0.5, 1)."""
    return min(max_wait_s, backoff_s * 2 ** (failures - 1)) * rng.uniform(0.5, 1.0)


class Closing:
    """What both OpenAI-compatible models share: ``close()`` and ``async with`` for a model whose
    ``aclose()`` closes its connections, :meth:`complete_blocking` and the provider's facts."""

    provider_name = "openai_compatible"
    supports_multiple_system_messages = True

    async def complete(self, messages: Sequence[Message], **settings: Any) -> Completion:
        raise NotImplementedError

    def complete_blocking(self, messages: Sequence[Message], **settings: Any) -> Completion:
        """:meth:`complete` for code with no event loop running (it runs one for the call)."""
        return asyncio.run(self.complete(messages, **settings))

    async def aclose(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        """The same as :meth:`aclose` (the name framework clients call)."""
        await self.aclose()

    async def __aenter__(self: _C) -> _C:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class OpenAICompatibleChatModel(Closing):
    """Calls ``POST {base_url}/chat/completions`` of an OpenAI-compatible server.

    Needs the ``openai-compatible`` extra: ``pip install "persona-plugins[openai-compatible]"``.

    Each call is an async HTTPX request, so cancelling the call (a cancelled turn, a timeout)
    closes its connection at once. An attempt that fails with HTTP 429, 500, 502, 503 or 504
    (:data:`RETRY_STATUSES`), a failed connect, or a connection the server closed or reset
    before answering is tried again, up to ``max_retries`` times: the n-th retry waits
    ``backoff_s * 2 ** (n - 1)`` seconds (at most ``max_wait_s``), scaled by a random factor
    between 0.5 and 1 so that many clients do not come back at once; a ``Retry-After`` header
    (seconds or an HTTP date) replaces that wait, and one longer than ``max_wait_s`` ends the
    retries at once. Any other HTTP error, a read timeout and a malformed answer fail at once.
    Each retry is logged at INFO level on the ``persona_plugins.integrations.openai_compatible``
    logger.

    Connections are pooled per event loop, so one model may serve several loops (two
    ``asyncio.run`` calls, threads with loops of their own). A loop's connections are closed when
    ``asyncio.run`` (or an ``asyncio.Runner``) finishes that loop, or by :meth:`aclose` (also
    ``async with model:``) on that loop; the model stays usable after either.

    Args:
        base_url: the API root, for example ``http://127.0.0.1:8000/v1``.
        model: the model name the server expects.
        api_key: sent as a bearer token (default ``$OPENAI_API_KEY``, else none).
        timeout_s: seconds to wait for the connection, and for each part of the response.
        generation: default generation settings for every call: the names of
            :data:`~persona_plugins.config.GENERATION_SETTINGS`, and an ``extra`` mapping whose
            keys go into the request body as they are (settings only this server knows, such as
            ``{"mirostat": 2}`` or ``{"chat_template_kwargs": {...}}``).
        max_retries: how many times a failed attempt is tried again (0: never); default 2, so at
            most 3 attempts.
        backoff_s: the wait before the first retry, doubled for each further one (default 0.5).
        max_wait_s: the longest wait before one retry (default 30); a ``Retry-After`` asking for
            more ends the retries.

    Raises:
        ConfigError: an unknown setting name (here or in a call's settings), naming the closest
            known one; an ``extra`` key that would replace ``model``, ``messages`` or
            ``stream``; settings that cannot be sent as JSON; or a retry setting that is not a
            finite, non-negative number.
        ModelCallError: (from :meth:`complete`) every attempt failed; ``messages`` keeps the
            conversation, ``errors`` says what each attempt met, and ``__cause__`` is the last
            HTTPX exception (an :class:`httpx.HTTPStatusError` for an HTTP error status, with
            the response on ``.response``).
    """

    def __init__(
        self,
        base_url: str,
        model: str = "default",
        *,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        generation: dict[str, Any] | None = None,
        max_retries: int = 2,
        backoff_s: float = 0.5,
        max_wait_s: float = 30.0,
    ):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.model_name = model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.timeout_s = timeout_s
        self.generation = _checked(generation, "OpenAICompatibleChatModel(generation=...)")
        self.max_retries: int = _number(max_retries, "max_retries", low=0, integer=True)
        self.backoff_s: float = _number(backoff_s, "backoff_s", low=0)
        self.max_wait_s: float = _number(max_wait_s, "max_wait_s", low=0)
        # One pool of connections per event loop: a connection belongs to the loop it was opened
        # on. The closer of each is an async generator, which asyncio.run / Runner finalise (and
        # so close the pool) when the loop ends.
        self._clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}
        self._closers: dict[asyncio.AbstractEventLoop, AsyncIterator[None]] = {}
        self._random = random.Random()

    # -- connections -----------------------------------------------------------------------------

    async def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        # A copy: other threads may add their own loop's pool meanwhile.
        for ended in [other for other in list(self._clients) if other.is_closed()]:
            # Ended without asyncio.run's clean-up: its sockets went with the loop.
            self._clients.pop(ended, None)
            self._closers.pop(ended, None)
        client = self._clients.get(loop)
        if client is None or client.is_closed:
            client = httpx.AsyncClient(timeout=httpx.Timeout(self.timeout_s))
            self._clients[loop] = client
            closer = self._close_when_the_loop_ends(loop, client)
            self._closers[loop] = closer
            await closer.__anext__()
        return client

    async def _close_when_the_loop_ends(
        self, loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient
    ) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if self._clients.get(loop) is client:
                del self._clients[loop]
                self._closers.pop(loop, None)
            await client.aclose()

    async def aclose(self) -> None:
        """Close the connections this model holds on the running event loop (the model stays
        usable: the next call opens new ones)."""
        loop = asyncio.get_running_loop()
        client = self._clients.pop(loop, None)
        closer = self._closers.pop(loop, None)
        if client is not None:
            await client.aclose()
        if closer is not None:
            await closer.aclose()  # type: ignore[attr-defined]

    # -- calls -----------------------------------------------------------------------------------

    def _request(self, messages: Sequence[Message], settings: dict[str, Any]) -> bytes:
        """The request body as JSON bytes; settings that are not JSON are a ConfigError."""
        body: dict[str, Any] = {
            "model": self.model_name,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
        }
        call = _checked(settings, "OpenAICompatibleChatModel.complete() settings")
        merged = {**self.generation, **call}
        extra = {**(self.generation.get(EXTRA_SETTINGS) or {}), **(call.get(EXTRA_SETTINGS) or {})}
        body.update({k: v for k, v in merged.items() if k != EXTRA_SETTINGS and v is not None})
        body.update(extra)  # unchecked by design: the server judges its own settings
        try:
            return json.dumps(body, allow_nan=False).encode("utf-8")
        except (TypeError, ValueError, RecursionError) as exc:
            raise ConfigError(
                f"OpenAICompatibleChatModel: the generation settings cannot be sent as JSON "
                f"({type(exc).__name__}: {exc}); use text, numbers, booleans, lists and tables"
            ) from None

    @property
    def url(self) -> str:
        """The endpoint every call posts to: ``{base_url}/chat/completions``."""
        return f"{self.base_url}/chat/completions"

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    async def complete(self, messages: Sequence[Message], **settings: Any) -> Completion:
        messages = list(messages)
        content = self._request(messages, settings)
        url = self.url
        headers = self._headers()
        attempts = self.max_retries + 1
        problems: list[str] = []
        for attempt in range(1, attempts + 1):
            try:
                raw = await self._attempt(url, content, headers)
            except _AttemptFailed as failed:
                problem = str(failed)
                problems.append(problem)
                wait = self._wait_before(attempt, failed.wait_s)
                if wait is None:
                    problem += (
                        f"; the server asked to retry after {failed.wait_s:.0f} s, longer than "
                        f"max_wait_s={self.max_wait_s:g}"
                    )
                if not failed.retry or attempt == attempts or wait is None:
                    if len(problems) > 1:
                        problem += f" (after {len(problems)} attempts)"
                    raise ModelCallError(
                        problem, messages=messages, errors=problems
                    ) from failed.__cause__
                logger.info(
                    "retrying POST %s in %.2f s (attempt %d of %d failed: %s)",
                    url,
                    wait,
                    attempt,
                    attempts,
                    failed,
                )
                await asyncio.sleep(wait)
                continue
            return self._parse(url, raw, messages)
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait_before(self, attempt: int, asked: float | None) -> float | None:
        """Seconds to wait before retrying after failed attempt number ``attempt`` (None: the
        server asked for longer than ``max_wait_s``)."""
        if asked is not None:
            return asked if asked <= self.max_wait_s else None
        return backoff_seconds(attempt, self.backoff_s, self.max_wait_s, self._random)

    async def _attempt(self, url: str, content: bytes, headers: dict[str, str]) -> bytes:
        """One request: the response body, or _AttemptFailed saying why and whether to retry."""
        client = await self._client()
        try:
            response = await client.post(url, content=content, headers=headers)
        except httpx.ConnectTimeout as exc:
            raise _AttemptFailed(
                f"cannot reach the model server at {self.base_url} (no connection within "
                f"{self.timeout_s} s); is it running?",
                retry=True,
            ) from exc
        except httpx.TimeoutException as exc:
            raise _AttemptFailed(
                f"the model server at {self.base_url} did not answer within {self.timeout_s} s",
                retry=False,
            ) from exc
        except httpx.ConnectError as exc:
            raise _AttemptFailed(
                f"cannot reach the model server at {self.base_url} ({exc}); is it running?",
                retry=True,
            ) from exc
        except _RETRY_ERRORS as exc:
            raise _AttemptFailed(
                f"the model server at {self.base_url} broke off the answer "
                f"({type(exc).__name__}: {exc})",
                retry=True,
            ) from exc
        except httpx.HTTPError as exc:
            raise _AttemptFailed(
                f"the request to {url} failed ({type(exc).__name__}: {exc})", retry=False
            ) from exc
        if response.status_code < 400:
            return response.content
        problem = f"{url} answered HTTP {response.status_code}: {response.text[:300]}"
        error = httpx.HTTPStatusError(problem, request=response.request, response=response)
        retry = response.status_code in RETRY_STATUSES
        wait_s = _retry_after(response) if retry else None
        raise _AttemptFailed(problem, retry=retry, wait_s=wait_s) from error

    def _parse(self, url: str, raw: bytes, messages: Sequence[Message]) -> Completion:
        """Turn the response body into a Completion; any malformation is a ModelCallError."""
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise ModelCallError(
                f"{url} did not answer with JSON text ({type(exc).__name__}: {exc})",
                messages=messages,
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

    def __repr__(self) -> str:
        return f"OpenAICompatibleChatModel({self.base_url!r}, model={self.model_name!r})"
