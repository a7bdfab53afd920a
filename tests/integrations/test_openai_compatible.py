"""``OpenAICompatibleChatModel`` against a real ``llama_cpp.server`` on loopback, and against
servers that are down, stall or answer garbage (small local stand-ins that force each fault)."""

from __future__ import annotations

import contextlib
import http.server
import json
import re
import socket
import threading
from collections.abc import Iterator

import pytest

from persona_plugins import (
    Completion,
    ConfigError,
    Message,
    ModelCallError,
    PersonaPipeline,
    PersonaPluginsError,
)
from persona_plugins.integrations.openai_compatible import OpenAICompatibleChatModel

QUESTION = [
    Message.system("Answer in one short sentence."),
    Message.user("What is the capital of France?"),
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- against the real server ---------------------------------------------------------------------


@pytest.mark.server
async def test_the_server_answers_a_question(llama_server):
    model = OpenAICompatibleChatModel(llama_server, model="smollm2")

    completion = await model.complete(QUESTION, max_tokens=32, temperature=0.0)

    assert isinstance(completion, Completion)
    assert completion.text.strip()
    assert completion.usage.input_tokens > 0
    assert 0 < completion.usage.output_tokens <= 32
    assert completion.finish_reason in {"stop", "length"}
    assert completion.model


@pytest.mark.server
async def test_generation_defaults_bound_every_call(llama_server):
    model = OpenAICompatibleChatModel(llama_server, model="smollm2", generation={"max_tokens": 8})

    completion = await model.complete([Message.user("Write a long story about a dragon.")])

    assert 0 < completion.usage.output_tokens <= 8
    assert completion.finish_reason == "length"


@pytest.mark.server
async def test_a_persona_pipeline_runs_over_the_server(llama_server):
    model = OpenAICompatibleChatModel(llama_server, model="smollm2")
    pipeline = PersonaPipeline(model, persona="pirate_captain", model_settings={"max_tokens": 48})

    result = await pipeline.run("Where is the treasure?")

    assert result.text.strip()
    assert result.model_calls == 1
    assert result.persona is not None and result.persona.name == "pirate_captain"
    assert result.prompt[0].role == "system"
    assert "pirate captain" in result.prompt[0].content
    assert result.prompt[-1] == Message.user("Where is the treasure?")
    assert 0 < result.usage.output_tokens <= 48


@pytest.mark.server
async def test_a_jekyll_hyde_pipeline_runs_over_the_server(llama_server):
    model = OpenAICompatibleChatModel(llama_server, model="smollm2", generation={"max_tokens": 32})
    pipeline = PersonaPipeline(
        model, persona="pirate_captain", ensemble="jekyll_hyde", judge={"retries": 0}
    )

    result = await pipeline.run("Name one sea creature.")

    assert result.text.strip()
    assert {c.name for c in result.candidates} == {"persona", "neutral"}
    assert result.model_calls >= 2
    candidate_tokens = sum(c.usage.output_tokens for c in result.candidates)
    assert candidate_tokens > 0
    assert result.usage.output_tokens >= candidate_tokens, "usage covers every call of the turn"


# -- faults ----------------------------------------------------------------------------------------


async def test_an_unreachable_server_is_a_model_call_error_saying_so():
    base = f"http://127.0.0.1:{free_port()}/v1"
    model = OpenAICompatibleChatModel(base, model="smollm2", timeout_s=10)

    with pytest.raises(ModelCallError) as raised:
        await model.complete(QUESTION)

    message = str(raised.value)
    assert "cannot reach the model server" in message
    assert base in message
    assert raised.value.messages == QUESTION, "the conversation is kept on the error"
    assert raised.value.__cause__ is not None


async def test_a_pipeline_over_an_unreachable_server_fails_keeping_the_conversation():
    model = OpenAICompatibleChatModel(f"http://127.0.0.1:{free_port()}/v1", timeout_s=10)
    pipeline = PersonaPipeline(model, persona="pirate_captain")

    with pytest.raises(ModelCallError) as raised:
        await pipeline.run("Where is the treasure?")

    assert "cannot reach the model server" in str(raised.value)
    assert raised.value.messages == [Message.user("Where is the treasure?")]
    assert isinstance(raised.value, PersonaPluginsError)


class FaultyHandler(http.server.BaseHTTPRequestHandler):
    """Answers every POST with whatever ``self.server.reply`` says: ``(status, body bytes)``, or
    raw bytes written to the socket as they are (not even an HTTP status line)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        reply = self.server.reply  # type: ignore[attr-defined]
        if isinstance(reply, bytes):
            self.wfile.write(reply)
            return
        status, body = reply
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def serving(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[http.server.HTTPServer]:
    """A loopback HTTP server running ``handler`` in a thread, shut down on exit."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def faulty_server() -> Iterator[http.server.HTTPServer]:
    with serving(FaultyHandler) as server:
        yield server


def base_of(server: http.server.HTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/v1"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ((500, b'{"error": "model crashed"}'), "HTTP 500"),
        ((200, b"<html>surprise</html>"), "did not answer with JSON"),
        ((200, b'{"object": "nothing"}'), "without choices[0].message"),
        ((200, b'{"choices": []}'), "without choices[0].message"),
        ((200, b'{"choices": [{"text": "legacy"}]}'), "without choices[0].message"),
    ],
    ids=["http-500", "not-json", "no-choices", "empty-choices", "no-message"],
)
async def test_a_server_answering_garbage_is_a_model_call_error_naming_it(
    faulty_server, reply, expected
):
    faulty_server.reply = reply  # type: ignore[attr-defined]
    model = OpenAICompatibleChatModel(base_of(faulty_server), model="smollm2", timeout_s=10)

    with pytest.raises(ModelCallError, match=re.escape(expected)) as raised:
        await model.complete(QUESTION)

    assert raised.value.messages == QUESTION


def raw_ok(body: bytes, *, length: int | None = None) -> bytes:
    size = len(body) if length is None else length
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % size + body


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(raw_ok(b"\xff\xfe\xfd\xfc"), id="not-utf8"),
        pytest.param(b"SSH-2.0-OpenSSH_9.6\r\n", id="not-http"),
        pytest.param(raw_ok(b'{"choi', length=100), id="truncated"),
        pytest.param(
            raw_ok(b'{"choices": [{"message": {"content": 5}}]}'),
            id="content-not-text",
        ),
        pytest.param(
            raw_ok(
                b'{"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": "a"}}'
            ),
            id="usage-not-a-number",
        ),
    ],
)
async def test_any_malformed_answer_is_a_model_call_error(faulty_server, reply):
    faulty_server.reply = reply  # type: ignore[attr-defined]
    model = OpenAICompatibleChatModel(base_of(faulty_server), model="smollm2", timeout_s=10)

    with pytest.raises(ModelCallError) as raised:
        await model.complete(QUESTION)

    assert base_of(faulty_server) in str(raised.value)


async def test_an_odd_finish_reason_does_not_lose_a_good_answer(faulty_server):
    faulty_server.reply = raw_ok(  # type: ignore[attr-defined]
        b'{"choices": [{"message": {"content": "x"}, "finish_reason": 3}]}'
    )
    model = OpenAICompatibleChatModel(base_of(faulty_server), model="smollm2", timeout_s=10)

    completion = await model.complete(QUESTION)

    assert completion.text == "x" and completion.finish_reason is None


async def test_a_pipeline_turns_a_malformed_answer_into_a_model_call_error(faulty_server):
    faulty_server.reply = raw_ok(b"\xff\xfe\xfd\xfc")  # type: ignore[attr-defined]
    model = OpenAICompatibleChatModel(base_of(faulty_server), model="smollm2", timeout_s=10)

    with pytest.raises(ModelCallError) as raised:
        await PersonaPipeline(model, persona="pirate_captain").run("Hello?")

    assert raised.value.messages == [Message.user("Hello?")]


async def test_missing_usage_counts_as_zero_tokens(faulty_server):
    faulty_server.reply = (  # type: ignore[attr-defined]
        200,
        b'{"choices": [{"message": {"content": " Paris. "}, "finish_reason": "stop"}]}',
    )
    model = OpenAICompatibleChatModel(base_of(faulty_server), model="smollm2")

    completion = await model.complete(QUESTION)

    assert completion.text == "Paris."
    assert completion.usage.input_tokens == completion.usage.output_tokens == 0
    assert completion.model == "smollm2"


async def test_a_stalled_server_times_out_as_a_model_call_error():
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection, never answers
    try:
        base = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
        model = OpenAICompatibleChatModel(base, model="smollm2", timeout_s=0.5)

        with pytest.raises(ModelCallError) as raised:
            await model.complete(QUESTION)
    finally:
        listener.close()

    assert base in str(raised.value)


def test_a_base_url_without_a_scheme_is_refused_up_front():
    with pytest.raises(ValueError, match="http:// or https://"):
        OpenAICompatibleChatModel("127.0.0.1:8000/v1")


# -- generation settings: checked by name, with ``extra`` passed on unchecked ---------------------


class RecordingHandler(http.server.BaseHTTPRequestHandler):
    """Keeps every request body it receives and answers a fixed short completion."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.bodies.append(json.loads(body))  # type: ignore[attr-defined]
        reply = b'{"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recording_server() -> Iterator[http.server.HTTPServer]:
    with serving(RecordingHandler) as server:
        server.bodies = []  # type: ignore[attr-defined]
        yield server


def test_a_misspelt_generation_setting_is_refused_when_the_model_is_built():
    with pytest.raises(ConfigError) as raised:
        OpenAICompatibleChatModel("http://127.0.0.1:8000/v1", generation={"max_token": 20})
    message = str(raised.value)
    assert message.startswith("OpenAICompatibleChatModel(generation=...): ")
    assert "unknown generation setting 'max_token' (did you mean 'max_tokens'?)" in message


async def test_a_misspelt_setting_of_one_call_is_refused_before_anything_is_sent(
    recording_server,
):
    model = OpenAICompatibleChatModel(base_of(recording_server), model="smollm2")

    with pytest.raises(ConfigError, match="did you mean 'temperature'"):
        await model.complete(QUESTION, temprature=0.0)

    assert recording_server.bodies == []  # type: ignore[attr-defined]


async def test_known_settings_and_extra_reach_the_request_body(recording_server):
    model = OpenAICompatibleChatModel(
        base_of(recording_server),
        model="smollm2",
        generation={"max_tokens": 20, "top_k": 40, "extra": {"mirostat": 2, "cache_prompt": True}},
    )

    await model.complete(QUESTION, temperature=0.0, seed=None, extra={"mirostat": 1})

    (body,) = recording_server.bodies  # type: ignore[attr-defined]
    assert body["model"] == "smollm2" and len(body["messages"]) == 2
    assert body["max_tokens"] == 20 and body["top_k"] == 40 and body["temperature"] == 0.0
    assert body["mirostat"] == 1, "a call's extra wins over the model's"
    assert body["cache_prompt"] is True
    assert "extra" not in body and "seed" not in body


@pytest.mark.parametrize("key", ["model", "messages", "stream"])
def test_extra_may_not_replace_what_the_model_writes_itself(key):
    with pytest.raises(ConfigError, match=f"'extra' may not set '{key}'"):
        OpenAICompatibleChatModel("http://127.0.0.1:8000/v1", generation={"extra": {key: 1}})


async def test_a_pipeline_with_extra_model_settings_sends_them(recording_server):
    model = OpenAICompatibleChatModel(base_of(recording_server), model="smollm2")
    pipeline = PersonaPipeline(
        model, persona="pirate_captain", model_settings={"max_tokens": 8, "extra": {"min_keep": 1}}
    )

    result = await pipeline.run("Hello?")

    assert result.text == "ok"
    (body,) = recording_server.bodies  # type: ignore[attr-defined]
    assert body["max_tokens"] == 8 and body["min_keep"] == 1


@pytest.mark.server
async def test_the_real_server_takes_an_extra_setting_it_knows(llama_server):
    model = OpenAICompatibleChatModel(
        llama_server, model="smollm2", generation={"max_tokens": 8, "extra": {"typical_p": 0.9}}
    )

    completion = await model.complete([Message.user("Say hello.")])

    assert 0 < completion.usage.output_tokens <= 8
