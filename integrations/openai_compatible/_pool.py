from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from persona_plugins.errors import ModelCallError
from persona_plugins.integrations.openai_compatible._model import (
    Closing,
    OpenAICompatibleChatModel,
    _AttemptFailed,
    _number,
    backoff_seconds,
    logger,
)
from persona_plugins.model import Completion, Message


@dataclass
class _Server:
    """One server of the pool and what the pool knows of it."""

    model: OpenAICompatibleChatModel
    index: int
    in_flight: int = 0
    calls: int = 0  # attempts sent
    answered: int = 0
    failed: int = 0
    failures_in_a_row: int = 0
    resting_until: float = 0.0  # monotonic time before which it gets no call if another can


def split_base_urls(values: str | Iterable[str]) -> list[str]:
    """Base URLs from one comma-separated string or several strings (each may hold commas too),
    blanks dropped, each kept once, in order.

    >>> split_base_urls(["http://a/v1, http://b/v1", "http://a/v1"])
    ['http://a/v1', 'http://b/v1']
    """
    parts = [values] if isinstance(values, str) else list(values)
    urls: list[str] = []
    for part in parts:
        for url in str(part).split(","):
            url = url.strip().rstrip("/")
            if url and url not in urls:
                urls.append(url)
    return urls


class OpenAICompatiblePool(Closing):
    """One chat model over several OpenAI-compatible servers serving the same model (replicas
    of vLLM, llama.cpp server or Ollama, on one machine or many).

    Needs the ``openai-compatible`` extra: ``pip install "persona-plugins[openai-compatible]"``.

    Each call goes to the server with the fewest calls in flight (ties: the one that was sent
    fewest calls, then the first listed), so concurrent calls spread over the fleet and
    sequential ones take turns. When an attempt fails in a way worth trying again (HTTP 429,
    500, 502, 503, 504, a failed connect, a connection closed or reset before the answer, as for
    :class:`OpenAICompatibleChatModel`), that server rests: it gets no call for
    ``backoff_s * 2 ** (n - 1)`` seconds after its n-th failure in a row (at most ``max_wait_s``,
    scaled by a random factor between 0.5 and 1; its ``Retry-After`` replaces that), while the
    call is tried again at once on another server; when every server rests, the call waits for
    the first to be back. A server's first answer ends its rest. Any other failure (another HTTP
    error, a read timeout, a malformed answer) fails the call at once, as on one server.

    :meth:`server_stats` says how many calls each server was sent, answered and failed.

    Example::

        from persona_plugins import Message
        from persona_plugins.integrations.openai_compatible import OpenAICompatiblePool

        async with OpenAICompatiblePool(
            ["http://10.0.0.5:8000/v1", "http://10.0.0.6:8000/v1"], model="smollm2"
        ) as model:
            completion = await model.complete([Message.user("Hello?")])
        print(model.server_stats())

    Args:
        base_urls: the servers' API roots (a list, or one comma-separated string); at least one.
        model: the model name every server expects.
        api_key: sent to every server as a bearer token (default ``$OPENAI_API_KEY``).
        timeout_s: seconds to wait for a connection and for each part of a response.
        generation: default generation settings for every call, as for
            :class:`OpenAICompatibleChatModel`.
        max_retries: how many times a failed call is tried again, on any server (default: one
            more than the number of servers, so each server is tried and the first twice).
        backoff_s: a server's rest after its first failure in a row, doubled for each further
            one (default 0.5).
        max_wait_s: the longest rest (default 30); a ``Retry-After`` asking for more rests the
            server that long anyway, and the call goes elsewhere; when every server rests longer
            than this, the call fails (``ModelCallError``) instead of waiting.

    Raises:
        ValueError: no base URL, or one that does not start with ``http://`` or ``https://``.
        ConfigError: as for :class:`OpenAICompatibleChatModel`.
        ModelCallError: (from :meth:`complete`) every attempt failed; ``errors`` says what each
            met, on which server.
    """

    def __init__(
        self,
        base_urls: str | Sequence[str],
        model: str = "default",
        *,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        generation: dict[str, Any] | None = None,
        max_retries: int | None = None,
        backoff_s: float = 0.5,
        max_wait_s: float = 30.0,
    ):
        urls = split_base_urls(base_urls)
        if not urls:
            raise ValueError("OpenAICompatiblePool needs at least one base URL")
        self.servers = [
            _Server(
                OpenAICompatibleChatModel(
                    url,
                    model,
                    api_key=api_key,
                    timeout_s=timeout_s,
                    generation=generation,
                    max_retries=0,  # the pool retries, on another server
                    backoff_s=backoff_s,
                    max_wait_s=max_wait_s,
                ),
                index,
            )
            for index, url in enumerate(urls)
        ]
        self.model_name = model
        self.base_urls = urls
        self.max_retries: int = (
            len(urls) + 1
            if max_retries is None
            else _number(max_retries, "max_retries", low=0, integer=True)
        )
        self.backoff_s = backoff_s
        self.max_wait_s = max_wait_s
        self._random = random.Random()
        self._clock = time.monotonic

    # -- what the pool reports -------------------------------------------------------------------

    def server_stats(self) -> list[dict[str, Any]]:
        """Per server, in the order given: ``base_url``, ``calls`` (attempts sent), ``answered``,
        ``failed`` and ``in_flight``."""
        return [
            {
                "base_url": s.model.base_url,
                "calls": s.calls,
                "answered": s.answered,
                "failed": s.failed,
                "in_flight": s.in_flight,
            }
            for s in self.servers
        ]

    # -- choosing a server -----------------------------------------------------------------------

    def _pick(self, tried: set[int]) -> tuple[_Server, float]:
        """The server for the next attempt, and how long to wait before it (0 unless every
        server rests)."""
        now = self._clock()
        awake = [s for s in self.servers if s.resting_until <= now]
        if awake:
            fresh = [s for s in awake if s.index not in tried] or awake
            return min(fresh, key=lambda s: (s.in_flight, s.calls, s.index)), 0.0
        first = min(self.servers, key=lambda s: (s.resting_until, s.in_flight, s.index))
        return first, first.resting_until - now

    def _rest(self, server: _Server, asked: float | None) -> None:
        server.failures_in_a_row += 1
        if asked is None:
            failures, rng = server.failures_in_a_row, self._random
            asked = backoff_seconds(failures, self.backoff_s, self.max_wait_s, rng)
        server.resting_until = max(server.resting_until, self._clock() + asked)

    # -- calls -----------------------------------------------------------------------------------

    async def complete(self, messages: Sequence[Message], **settings: Any) -> Completion:
        messages = list(messages)
        first = self.servers[0].model
        content = first._request(messages, settings)  # the same body for every server
        headers = first._headers()
        attempts = self.max_retries + 1
        problems: list[str] = []
        tried: set[int] = set()
        for attempt in range(1, attempts + 1):
            server, wait = self._pick(tried)
            if wait > self.max_wait_s:  # as one server does: never wait longer than allowed
                problem = (
                    f"every server is resting; the first is back in {wait:.0f} s, longer than "
                    f"max_wait_s={self.max_wait_s:g}"
                )
                raise ModelCallError(problem, messages=messages, errors=[*problems, problem])
            if wait > 0:
                await asyncio.sleep(wait)
            tried.add(server.index)
            server.calls += 1
            server.in_flight += 1
            try:
                raw = await server.model._attempt(server.model.url, content, headers)
            except _AttemptFailed as failed:
                server.failed += 1
                problems.append(f"{failed}")
                if not failed.retry or attempt == attempts:
                    problem = str(failed)
                    if len(problems) > 1:
                        problem += f" (after {len(problems)} attempts on {len(tried)} servers)"
                    raise ModelCallError(
                        problem, messages=messages, errors=problems
                    ) from failed.__cause__
                self._rest(server, failed.wait_s)
                logger.info(
                    "%s failed (attempt %d of %d: %s); trying again on the least busy server",
                    server.model.base_url,
                    attempt,
                    attempts,
                    failed,
                )
                continue
            finally:
                server.in_flight -= 1
            server.answered += 1
            server.failures_in_a_row = 0
            server.resting_until = 0.0
            return server.model._parse(server.model.url, raw, messages)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- connections -----------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close every server's connections on the running event loop (the pool stays usable)."""
        for server in self.servers:
            await server.model.aclose()

    def __repr__(self) -> str:
        return f"OpenAICompatiblePool({self.base_urls!r}, model={self.model_name!r})"


__all__ = ["OpenAICompatiblePool", "split_base_urls"]
