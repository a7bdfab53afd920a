"""``OpenAICompatibleChatModel`` under faults, against a real loopback HTTP server that answers each
request as its script says: rate limits, server errors, resets, stalls. Retries happen and are
counted, ``Retry-After`` is honoured, other errors fail at once, a cancelled call closes its
connection, and one model serves several event loops."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import re
import socket
import struct
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from persona_plugins import (
    ConfigError,
    Message,
    MissingExtraError,
    ModelCallError,
    PersonaPipeline,
    PersonaPluginsError,
)
from persona_plugins.integrations.openai_compatible import OpenAICompatibleChatModel

QUESTION = [Message.user("What is the capital of France?")]
ANSWER = b'{"choices": [{"message": {"content": "Paris."}, "finish_reason": "stop"}]}'
LOGGER = "persona_plugins.integrations.openai_compatible"


@dataclass
class Reply:
    """What the server does with one request: answer ``status`` (with ``headers`` and ``body``),
    or ``reset`` the connection (RST), ``close`` it without a word, or ``stall`` (never answer)."""

    status: int = 200
    body: bytes = ANSWER
    headers: dict[str, str] = field(default_factory=dict)
    action: str = "answer"


OK = Reply()
RESET = Reply(action="reset")
CLOSE = Reply(action="close")
STALL = Reply(action="stall")


def error(status: int, **headers: str) -> Reply:
    return Reply(status=status, body=b'{"error": "try later"}', headers=headers)


class ScriptedServer:
    """A loopback HTTP/1.1 server on its own event loop in a thread. Request n gets
    ``script[n]`` (the last entry repeats). It counts requests, connections opened and closed by
    the client, and notes each stalled request the client gave up on."""

    def __init__(self, script: list[Reply]):
        self.script = script
        self.requests = 0
        self.opened = 0
        self.closed = 0
        self.stalled = threading.Event()  # a request is being stalled
        self.abandoned = threading.Event()  # ... and the client closed that connection
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="scripted-server")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._connection, "127.0.0.1", 0)
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        self._loop.run_until_complete(server.wait_closed())
        self._loop.close()

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.opened += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)content-length:\s*(\d+)", head)
                await reader.readexactly(int(length.group(1)) if length else 0)
                reply = self.script[min(self.requests, len(self.script) - 1)]
                self.requests += 1
                if reply.action == "reset":
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()
                    return
                if reply.action == "close":
                    return
                if reply.action == "stall":
                    self.stalled.set()
                    await reader.read()  # b"" once the client closes the connection
                    self.abandoned.set()
                    return
                headers = {"Content-Type": "application/json", **reply.headers}
                headers["Content-Length"] = str(len(reply.body))
                lines = [f"HTTP/1.1 {reply.status} X"] + [f"{k}: {v}" for k, v in headers.items()]
                writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + reply.body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed the connection
        finally:
            self.closed += 1
            writer.close()

    def wait_until_all_closed(self) -> bool:
        """True once every connection the client opened is closed again (waits up to 10 s)."""
        for _ in range(1000):
            if self.opened and self.closed == self.opened:
                return True
            threading.Event().wait(0.01)
        return False


@contextlib.contextmanager
def scripted(*script: Reply) -> Iterator[ScriptedServer]:
    with ScriptedServer(list(script)) as server:
        yield server


def model_for(server: ScriptedServer, **options) -> OpenAICompatibleChatModel:
    options.setdefault("backoff_s", 0.01)
    return OpenAICompatibleChatModel(server.base_url, model="smollm2", timeout_s=30, **options)


def waits(caplog: pytest.LogCaptureFixture) -> list[float]:
    """The wait before each retry, as the model logged it."""
    found = [re.search(r" in ([\d.]+) s ", r.getMessage()) for r in caplog.records]
    return [float(m.group(1)) for m in found if m]


# -- retries -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failures",
    [
        pytest.param([error(429), error(503)], id="rate-limit-then-unavailable"),
        pytest.param([error(500), error(502), error(504)], id="server-errors"),
        pytest.param([RESET, CLOSE], id="reset-then-closed"),
    ],
)
async def test_transient_failures_are_retried_until_the_server_answers(caplog, failures):
    caplog.set_level(logging.INFO, logger=LOGGER)
    with scripted(*failures, OK) as server:
        async with model_for(server, max_retries=len(failures)) as model:
            completion = await model.complete(QUESTION)

    assert completion.text == "Paris."
    assert server.requests == len(failures) + 1
    assert len(waits(caplog)) == len(failures), "each retry is logged with its wait"


async def test_a_call_gives_up_after_max_retries_saying_what_each_attempt_met():
    with scripted(error(500)) as server:
        async with model_for(server, max_retries=2) as model:
            with pytest.raises(ModelCallError) as raised:
                await model.complete(QUESTION)

    assert server.requests == 3, "one attempt and two retries"
    assert "answered HTTP 500" in str(raised.value)
    assert "(after 3 attempts)" in str(raised.value)
    assert len(raised.value.errors) == 3
    assert raised.value.messages == QUESTION
    assert isinstance(raised.value.__cause__, httpx.HTTPStatusError)


async def test_max_retries_zero_makes_one_attempt():
    with scripted(error(503), OK) as server:
        async with model_for(server, max_retries=0) as model:
            with pytest.raises(ModelCallError, match="HTTP 503"):
                await model.complete(QUESTION)

    assert server.requests == 1


async def test_backoff_doubles_with_jitter_and_is_capped(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    with scripted(error(503)) as server:
        async with model_for(server, max_retries=4, backoff_s=0.02, max_wait_s=0.05) as model:
            with pytest.raises(ModelCallError):
                await model.complete(QUESTION)

    bases = [0.02, 0.04, 0.05, 0.05]  # doubled, then capped by max_wait_s
    logged = waits(caplog)
    assert len(logged) == 4
    for wait, base in zip(logged, bases, strict=True):
        assert base * 0.5 - 0.005 <= wait <= base + 0.005  # logged to two decimals


async def test_retry_after_replaces_the_backoff(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    with scripted(error(429, **{"Retry-After": "1"}), OK) as server:
        async with model_for(server, backoff_s=0.001) as model:
            completion = await model.complete(QUESTION)

    assert completion.text == "Paris."
    assert waits(caplog) == [1.0]


async def test_a_retry_after_beyond_max_wait_ends_the_retries_at_once():
    with scripted(error(429, **{"Retry-After": "120"}), OK) as server:
        async with model_for(server, max_wait_s=30) as model:
            with pytest.raises(ModelCallError) as raised:
                await model.complete(QUESTION)

    assert server.requests == 1
    assert "HTTP 429" in str(raised.value)
    assert "asked to retry after 120 s, longer than max_wait_s=30" in str(raised.value)


async def test_a_retry_after_date_is_honoured(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    with scripted(error(503, **{"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}), OK) as server:
        async with model_for(server) as model:
            await model.complete(QUESTION)

    assert waits(caplog) == [0.0], "a date in the past means: retry now"


@pytest.mark.parametrize("status", [400, 401, 404, 413, 422])
async def test_other_client_errors_fail_at_once(status):
    with scripted(error(status), OK) as server:
        async with model_for(server, max_retries=3) as model:
            with pytest.raises(ModelCallError) as raised:
                await model.complete(QUESTION)

    assert server.requests == 1, "a request the server refuses is not sent again"
    assert f"answered HTTP {status}" in str(raised.value)
    assert "attempts" not in str(raised.value)
    cause = raised.value.__cause__
    assert isinstance(cause, httpx.HTTPStatusError) and cause.response.status_code == status


async def test_a_pipeline_turn_rides_out_a_rate_limit():
    with scripted(error(429), OK) as server:
        async with model_for(server) as model:
            result = await PersonaPipeline(model, persona="pirate_captain").run("Hello?")

    assert result.text == "Paris."
    assert server.requests == 2


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("max_retries", -1),
        ("max_retries", 1.5),
        ("max_retries", True),
        ("backoff_s", float("inf")),
        ("backoff_s", "1"),
        ("max_wait_s", -0.1),
    ],
)
def test_bad_retry_settings_are_config_errors_naming_them(option, value):
    with pytest.raises(ConfigError, match=f"{option}="):
        OpenAICompatibleChatModel("http://127.0.0.1:8000/v1", **{option: value})


async def test_settings_that_are_not_json_are_a_config_error_before_anything_is_sent():
    with scripted(OK) as server:
        async with model_for(server) as model:
            with pytest.raises(ConfigError, match="cannot be sent as JSON"):
                await model.complete(QUESTION, extra={"callback": object()})

    assert server.requests == 0


# -- cancellation --------------------------------------------------------------------------------


async def eventually(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    """Wait until ``condition()`` holds (at most ``seconds``) without blocking the loop or
    starting a thread; return whether it holds."""
    for _ in range(int(seconds * 100)):
        if condition():
            return True
        await asyncio.sleep(0.01)
    return condition()


async def test_a_cancelled_call_closes_its_connection_and_leaves_no_thread_running():
    with scripted(STALL) as server:
        threads_before = set(threading.enumerate())
        model = OpenAICompatibleChatModel(server.base_url, model="smollm2", timeout_s=60)
        call = asyncio.create_task(model.complete(QUESTION))
        assert await eventually(server.stalled.is_set), "the request reached the server"

        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call

        assert await eventually(server.abandoned.is_set), (
            "the server saw the client close the connection"
        )
        assert set(threading.enumerate()) - threads_before == set(), "no request left running"
        assert server.requests == 1, "a cancelled call is not retried"
        await model.aclose()


async def test_a_call_cancelled_while_waiting_to_retry_sends_nothing_more():
    with scripted(error(503, **{"Retry-After": "20"}), OK) as server:
        model = model_for(server, max_wait_s=60)
        call = asyncio.create_task(model.complete(QUESTION))
        assert await eventually(lambda: server.requests == 1)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await model.aclose()

    assert server.requests == 1


async def test_a_cancelled_pipeline_turn_closes_the_connection_of_every_candidate():
    with scripted(STALL) as server:
        model = OpenAICompatibleChatModel(server.base_url, model="smollm2", timeout_s=60)
        pipeline = PersonaPipeline(model, persona="pirate_captain", ensemble="jekyll_hyde")
        turn = asyncio.create_task(pipeline.run("Where is the treasure?"))
        assert await eventually(lambda: server.requests == 2), "the persona and neutral calls"

        turn.cancel()
        with pytest.raises(asyncio.CancelledError):
            await turn

        both_closed = await eventually(lambda: server.closed == server.opened == 2)
        assert both_closed, "both stalled requests were closed"
        await model.aclose()


# -- connections, event loops, closing -----------------------------------------------------------


def test_one_model_serves_several_event_loops_one_after_another_and_at_once():
    with scripted(OK) as server:
        model = model_for(server)
        first = asyncio.run(model.complete(QUESTION))
        second = asyncio.run(model.complete(QUESTION))
        answers: list[str] = []

        def in_a_thread() -> None:
            answers.append(asyncio.run(model.complete(QUESTION)).text)

        threads = [threading.Thread(target=in_a_thread) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)

        assert (first.text, second.text, answers) == ("Paris.", "Paris.", ["Paris."] * 3)
        assert server.wait_until_all_closed(), "asyncio.run closed each loop's connections"
        assert server.opened == 5


async def test_calls_on_one_loop_share_a_connection_until_aclose():
    with scripted(OK) as server:
        model = model_for(server)
        for _ in range(3):
            await model.complete(QUESTION)
        assert (server.requests, server.opened, server.closed) == (3, 1, 0)

        await model.aclose()
        assert server.wait_until_all_closed()

        await model.complete(QUESTION)  # still usable: a new connection
        assert server.opened == 2
        await model.close()  # the name framework clients call
        assert server.wait_until_all_closed()


def test_complete_blocking_answers_without_a_running_loop():
    with scripted(error(502), OK) as server:
        completion = model_for(server).complete_blocking(QUESTION)

        assert completion.text == "Paris."
        assert server.requests == 2
        assert server.wait_until_all_closed()


# -- the extra -----------------------------------------------------------------------------------


def test_importing_the_integration_without_httpx_names_the_install_line(monkeypatch):
    package = "persona_plugins.integrations.openai_compatible"
    monkeypatch.setitem(sys.modules, "httpx", None)
    for loaded in [m for m in sys.modules if m.startswith(package)]:
        monkeypatch.delitem(sys.modules, loaded)

    with pytest.raises(MissingExtraError) as raised:
        importlib.import_module(package)

    assert 'pip install "persona-plugins[openai-compatible]"' in str(raised.value)
    assert raised.value.extra == "openai-compatible" and raised.value.missing == "httpx"
    assert isinstance(raised.value, ImportError) and isinstance(raised.value, PersonaPluginsError)
