"""A real Arize Phoenix server on loopback, shared by the observability test and the screenshot
script.

Phoenix lives in a venv of its own (``make .venv-phoenix/.installed``) so that its dependencies
stay out of the project's; it is started as a subprocess and spoken to over HTTP only.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
PHOENIX = REPO_ROOT / ".venv-phoenix" / "bin" / "phoenix"
INSTALL_COMMAND = "make .venv-phoenix/.installed"
#: Set to 1 to skip the Phoenix test where Phoenix cannot be installed.
SKIP_ENV = "PERSONA_PLUGINS_SKIP_PHOENIX"
START_TIMEOUT_S = 90.0
SPANS_TIMEOUT_S = 30.0

Span = dict[str, Any]


class PhoenixError(RuntimeError):
    """Phoenix is missing, did not start, or did not return the expected spans in time."""


def not_installed_message() -> str:
    return (
        f"Arize Phoenix is not installed at {PHOENIX.relative_to(REPO_ROOT)}; run "
        f"`{INSTALL_COMMAND}` (it builds a separate venv; `make test` does it for you), "
        f"or set {SKIP_ENV}=1 to skip this test"
    )


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (the sockets stay open until all are chosen)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _log_tail(log: Path) -> str:
    try:
        return log.read_text(errors="replace")[-3000:]
    except OSError:
        return "(no log)"


@contextmanager
def running_phoenix(working_dir: Path, *, timeout_s: float = START_TIMEOUT_S) -> Iterator[str]:
    """Run ``phoenix serve`` on free loopback ports with its data in ``working_dir``; yield its
    base URL (``http://127.0.0.1:PORT``) once it answers, and stop it on exit.

    Raises:
        PhoenixError: Phoenix is not installed, exits early or does not answer in ``timeout_s``.
    """
    if not PHOENIX.exists():
        raise PhoenixError(not_installed_message())
    port, grpc_port = free_ports(2)
    # Inherited PHOENIX_* settings (a real database, a remote collector) must not leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOENIX_")}
    env.update(
        PHOENIX_HOST="127.0.0.1",
        PHOENIX_PORT=str(port),
        PHOENIX_GRPC_PORT=str(grpc_port),
        PHOENIX_WORKING_DIR=str(working_dir),
        PHOENIX_TELEMETRY_ENABLED="false",
    )
    log = working_dir / "phoenix.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(PHOENIX), "serve"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise PhoenixError(f"phoenix serve exited early:\n{_log_tail(log)}")
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise PhoenixError(
                        f"phoenix serve did not answer within {timeout_s:.0f} s:\n{_log_tail(log)}"
                    ) from None
                time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def project_id(base: str, project: str) -> str:
    """The global id Phoenix gave ``project`` (the UI's URLs use it)."""
    return str(get_json(f"{base}/v1/projects/{urllib.parse.quote(project)}")["data"]["id"])


def wait_for_spans(
    base: str,
    project: str,
    done: Callable[[list[Span]], bool],
    *,
    timeout_s: float = SPANS_TIMEOUT_S,
) -> list[Span]:
    """Poll ``GET /v1/projects/{project}/spans`` until ``done(spans)``; return the spans.

    The project exists only once its first span is stored (until then Phoenix answers 404), and
    Phoenix writes received spans to its database in batches, so spans arrive after a delay.

    Raises:
        PhoenixError: ``done`` was still false after ``timeout_s``.
    """
    url = f"{base}/v1/projects/{urllib.parse.quote(project)}/spans?limit=1000"
    deadline = time.monotonic() + timeout_s
    spans: list[Span] = []
    problem = "no answer yet"
    while True:
        try:
            spans = list(get_json(url)["data"])
            if done(spans):
                return spans
            problem = f"{len(spans)} spans so far: {sorted(s['name'] for s in spans)}"
        except urllib.error.HTTPError as exc:
            problem = f"HTTP {exc.code} from {url}"
        except OSError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        if time.monotonic() > deadline:
            raise PhoenixError(
                f"Phoenix did not return the expected spans of project {project!r} within "
                f"{timeout_s:.0f} s ({problem})"
            )
        time.sleep(0.5)
