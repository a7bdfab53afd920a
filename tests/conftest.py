"""Shared fixtures: the embedded model, a real llama.cpp server, shared data, tracing."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

# Tests see exactly the built-in plugins, whatever else is installed in the environment.
os.environ.setdefault("PERSONA_PLUGINS_DISABLE_AUTOLOAD", "1")
# AutoGen's runtime tracing puts whole payloads on spans of the global provider; keep it quiet.
os.environ.setdefault("AUTOGEN_DISABLE_RUNTIME_TRACING", "true")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout (read-only); tests skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data sets not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def embedded_model():
    """The real embedded SmolLM2 model (one instance for the session; calls are serialised)."""
    from persona_plugins.integrations.llama_cpp import LlamaCppChatModel

    model = LlamaCppChatModel()
    model.load()
    return model


@pytest.fixture
def plugin_manager():
    """A fresh plugin manager with the built-ins only, so tests can register plugins freely."""
    from persona_plugins import new_plugin_manager

    return new_plugin_manager(load_entrypoints=False)


@pytest.fixture
def memory_tracing():
    """A local SDK tracer provider with an in-memory exporter: ``(provider, exporter)``."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory) -> Iterator[str]:
    """A real llama.cpp server (``llama_cpp.server``, started through
    ``persona_plugins.integrations.llama_cpp.server``) with SmolLM2 on a free loopback port;
    yields the OpenAI-compatible base URL (``http://127.0.0.1:PORT/v1``)."""
    from persona_plugins.integrations.llama_cpp import default_model_path

    port = free_port()
    log = tmp_path_factory.mktemp("llama_server") / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                # llama_cpp.server behind the CPU check, with the AMX-prone buffer types off
                "persona_plugins.integrations.llama_cpp.server",
                "--model",
                str(default_model_path()),
                "--model_alias",
                "smollm2",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                "2048",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited early:\n{log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{base}/models", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"llama_cpp.server did not start:\n{log.read_text()[-2000:]}")
                time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
