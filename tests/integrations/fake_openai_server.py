"""A fake OpenAI-compatible chat server on loopback, for the concurrency and fleet tests and the
fleet benchmark (``benchmarks/bench_fleet.py``).

It runs on an event loop of its own in a daemon thread, speaks HTTP/1.1 with keep-alive, and
answers ``POST .../chat/completions`` after a delay (fixed, or drawn per request), with a reply that
depends only on the request's messages (:func:`reply_for`): the same question gets the same answer
whatever the order or the server, so a run's figures can be compared across concurrency levels
and fleets. It counts requests and the most it ever had in flight at once, and can be told to
fail: answer every request with an HTTP status (``fail_status``) or close the connection without a
word (``fail_close``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import threading
from collections.abc import Callable
from typing import Any


def reply_for(messages: list[dict[str, Any]]) -> str:
    """A deterministic reply to ``messages``: a step of reasoning and a final answer line whose
    form follows the format instruction in the prompt (yes/no, a letter, a number), the answer
    drawn from a hash of the whole conversation, so about half of yes/no answers are right."""
    text = json.dumps(messages, sort_keys=True)
    digest = int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16)
    last = str(messages[-1].get("content", "")) if messages else ""
    if "(<letter>)" in last:
        answer = f"({'ABCDE'[digest % 5]})"
    elif "yes. (or no.)" in last or "agree or disagree" in last.lower():
        answer = "yes." if digest % 2 else "no."
        if "agree or disagree" in last.lower():
            return (
                "I agree, it is often said."
                if digest % 3 == 0
                else "I disagree: that is a stereotype."
            )
    else:
        answer = f"{digest % 7}."
    return f"Let me think step by step. The answer is {answer}"


class FakeOpenAIServer:
    """A loopback OpenAI-compatible server; use as a context manager.

    :param latency: seconds before each answer, or a callable drawing them (called once per
        request, on the server's loop).
    :param reply: the reply text for a request's messages (default :func:`reply_for`).
    :param slots: requests it works on at once (None: any number), as a model server's batch
        size bounds it; the others wait their turn.
    """

    def __init__(
        self,
        latency: float | Callable[[], float] = 0.0,
        *,
        reply: Callable[[list[dict[str, Any]]], str] = reply_for,
        slots: int | None = None,
    ):
        self.latency = latency
        self.slots = slots
        self._slots: asyncio.Semaphore | None = None
        self.reply = reply
        self.requests = 0
        self.answered = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.fail_status: int | None = None
        self.retry_after: str | None = None  # a Retry-After header on failures
        self.fail_close = False
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="fake-openai")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fake server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        if self.slots is not None:
            self._slots = asyncio.Semaphore(self.slots)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._connection, "127.0.0.1", 0, backlog=512)
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        for task in asyncio.all_tasks(self._loop):
            task.cancel()
        self._loop.run_until_complete(asyncio.sleep(0))
        self._loop.close()

    def _delay(self) -> float:
        return self.latency() if callable(self.latency) else self.latency

    async def _work(self) -> None:
        delay = self._delay()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)content-length:\s*(\d+)", head)
                body = await reader.readexactly(int(length.group(1)) if length else 0)
                self.requests += 1
                if self.fail_close:
                    return
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                try:
                    if self._slots is not None:
                        async with self._slots:
                            await self._work()
                    else:
                        await self._work()
                finally:
                    self.in_flight -= 1
                if self.fail_status is not None:
                    status, payload = self.fail_status, b'{"error": "unavailable"}'
                else:
                    status = 200
                    request = json.loads(body)
                    text = self.reply(request["messages"])
                    payload = json.dumps(
                        {
                            "model": request.get("model", "fake"),
                            "choices": [{"message": {"content": text}, "finish_reason": "stop"}],
                            "usage": {"prompt_tokens": len(body) // 4, "completion_tokens": 12},
                        }
                    ).encode()
                    self.answered += 1
                extra = ""
                if status != 200 and self.retry_after is not None:
                    extra = f"Retry-After: {self.retry_after}\r\n"
                writer.write(
                    f"HTTP/1.1 {status} X\r\n"
                    "Content-Type: application/json\r\n"
                    f"{extra}Content-Length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


def random_latency(seed: int, low: float = 0.0, high: float = 0.02) -> Callable[[], float]:
    """A latency drawn uniformly from ``[low, high]`` per request, reproducibly from ``seed``."""
    rng = random.Random(seed)
    return lambda: rng.uniform(low, high)
