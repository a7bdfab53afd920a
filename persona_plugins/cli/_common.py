"""What every command shares: the model and tracing options, building the model, the one model
label, the persona catalog, errors and exit codes, reaching a framework adapter's CLI part, and
running an evaluation harness (:func:`run_harness`, :func:`print_summary`).

Commands call :func:`build_model` through this module (``_common.build_model(args)``), so a test
or a script that replaces the model replaces it for every command in one place.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import re
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, Protocol, cast

from persona_plugins.config import PipelineConfig
from persona_plugins.errors import (
    ConfigError,
    DataNotFoundError,
    MessageError,
    MissingExtraError,
    ModelLoadError,
    PersonaError,
    PluginError,
)
from persona_plugins.model import ChatModel
from persona_plugins.persona import Persona

PROG = "persona-plugins"

#: Errors that mean bad input: one line, exit status 2.
INPUT_ERRORS = (
    PersonaError,
    ConfigError,
    DataNotFoundError,
    MessageError,
    PluginError,
    MissingExtraError,
    ModelLoadError,
)

#: The model every command runs unless told otherwise.
EMBEDDED_MODEL = "embedded SmolLM2-135M-Instruct"

#: Comma-separated base URLs of OpenAI-compatible servers, used when no ``--base-url`` is given.
BASE_URLS_ENV = "PERSONA_PLUGINS_BASE_URLS"

#: Questions in flight at once in an evaluation harness over servers (``--base-url``), unless
#: ``--concurrency`` says otherwise; a local model (embedded or GGUF) runs one at a time.
SERVER_CONCURRENCY = 8

DATA_DIR_HELP = (
    "a folder holding the data sets, then the only place looked in (default: the download cache, "
    "then ../shared/data; see `persona-plugins data list`)"
)


class UsageError(Exception):
    """Bad input the command itself found: one line, exit status 2."""


def fail(message: str, code: int) -> NoReturn:
    print(f"{PROG}: error: {printable(message)}", file=sys.stderr)
    raise SystemExit(code)


# -- text from files and models, made safe for the terminal ---------------------------------------

#: What is never echoed: C0 control characters but tab and newline (escape sequences start with
#: ESC; a carriage return overwrites the line), DEL, the C1 controls (0x9b starts an escape
#: sequence on some terminals) and the bidirectional marks and overrides that reorder what is
#: shown.
_UNPRINTABLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)

#: The same characters that JSON output still holds as they are (json.dumps escapes C0 itself).
_UNPRINTABLE_IN_JSON = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: object, *, one_line: bool = False) -> str:
    r"""``text`` safe to print on a terminal: every command passes what it echoes from a file, a
    plugin or a model through this. Control characters (escape sequences, carriage returns, bells),
    DEL, C1 controls and bidirectional overrides are removed; newlines and tabs stay, unless
    ``one_line`` (a table cell, a one-line report), which makes each of them a space.

    Example:
        >>> printable("ok\x1b[2J\r\nnext\tline", one_line=True)
        'ok[2J next line'
    """
    value = str(text).replace("\r\n", "\n")
    if one_line:
        value = value.replace("\n", " ").replace("\t", " ")
    return _UNPRINTABLE.sub("", value)


def printable_json(value: Any, **options: Any) -> str:
    """``json.dumps(value, **options)`` safe to print on a terminal: the characters
    :func:`printable` removes are written as ``\\uXXXX`` escapes instead (the same JSON value)."""
    return _UNPRINTABLE_IN_JSON.sub(
        lambda found: f"\\u{ord(found.group()):04x}", json.dumps(value, **options)
    )


# -- shared options ------------------------------------------------------------------------------


def add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model (default: the embedded SmolLM2-135M-Instruct)")
    group.add_argument("--model-path", help="a GGUF file to run with llama.cpp instead")
    group.add_argument(
        "--base-url",
        action="append",
        metavar="URL",
        help="an OpenAI-compatible server (Ollama, vLLM, llama.cpp server), e.g. "
        "http://127.0.0.1:8000/v1; give it several times (or comma-separated) for a fleet of "
        f"replicas, each call going to the least busy one (default ${BASE_URLS_ENV})",
    )
    group.add_argument("--model", help="the model name to ask the server for (with --base-url)")
    group.add_argument("--api-key", help="bearer token for the server (default $OPENAI_API_KEY)")
    group.add_argument("--max-tokens", type=int, help="cap on tokens per model call")


def add_harness_options(parser: argparse.ArgumentParser, *, out: str) -> None:
    """The options every evaluation harness takes: where the data sets and the results are, the
    summary as JSON, the model and tracing."""
    parser.add_argument("--data-dir", help=DATA_DIR_HELP)
    parser.add_argument("--out", default=out, help="output folder (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--concurrency",
        type=positive_int,
        metavar="N",
        help="questions in flight at once (default: 1 on a local model, whose calls run one at "
        f"a time anyway; {SERVER_CONCURRENCY} with --base-url); the figures do not depend on it",
    )
    add_model_options(parser)
    add_trace_options(parser)


def positive_int(value: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} is less than 1")
    return number


def add_trace_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("tracing")
    group.add_argument(
        "--trace",
        choices=["console", "otlp"],
        help="print the span tree (console) or export over OTLP/HTTP (otlp)",
    )
    group.add_argument(
        "--otlp-endpoint",
        help="OTLP/HTTP traces URL for --trace otlp (default http://localhost:4318/v1/traces)",
    )


# -- the model -----------------------------------------------------------------------------------


def base_urls(args: argparse.Namespace) -> list[str]:
    """The servers the options name: every ``--base-url`` (each may be comma-separated), else
    ``$PERSONA_PLUGINS_BASE_URLS``; each once, in order. Empty: no server."""
    given = getattr(args, "base_url", None)
    if isinstance(given, str):
        given = [given]
    if not given:
        given = [os.environ.get(BASE_URLS_ENV, "")]
    urls: list[str] = []
    for part in given:
        for url in part.split(","):
            url = url.strip().rstrip("/")
            if url and url not in urls:
                urls.append(url)
    return urls


def build_model(args: argparse.Namespace) -> ChatModel:
    """The model the model options name: a server (several: a pool over them), a GGUF file, or
    the embedded model (loaded now, so that a file llama.cpp cannot run fails here with a clear
    message)."""
    generation = {"max_tokens": args.max_tokens} if args.max_tokens else None
    urls = base_urls(args)
    if urls:
        from persona_plugins.integrations.openai_compatible import (
            OpenAICompatibleChatModel,
            OpenAICompatiblePool,
        )

        try:
            if len(urls) == 1:
                server: ChatModel = OpenAICompatibleChatModel(
                    urls[0],
                    model=args.model or "default",
                    api_key=args.api_key,
                    generation=generation,
                )
            else:
                server = OpenAICompatiblePool(
                    urls, model=args.model or "default", api_key=args.api_key, generation=generation
                )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        return server
    if args.model:
        raise UsageError("--model names a model on a server; give --base-url too")
    from persona_plugins.integrations.llama_cpp import LlamaCppChatModel

    local = LlamaCppChatModel(args.model_path, generation=generation)
    local.load()  # fail now, with a clear message, rather than inside the first turn
    model: ChatModel = local
    return model


def model_label(args: argparse.Namespace, *, runtime: bool = False) -> str:
    """The model the command runs, as summaries, progress lines and result files name it:
    ``NAME at URL`` for a server, the GGUF path, or the embedded model (with ``runtime``, followed
    by what runs it)."""
    urls = base_urls(args)
    if urls:
        return f"{args.model or 'default'} at {', '.join(urls)}"
    if args.model_path:
        return str(args.model_path)
    return f"{EMBEDDED_MODEL} (llama.cpp)" if runtime else EMBEDDED_MODEL


# -- tracing -------------------------------------------------------------------------------------


def tracer_provider(args: argparse.Namespace) -> Any:
    """The provider ``--trace`` asks for, installed globally; None without ``--trace``."""
    if not getattr(args, "trace", None):
        return None
    from persona_plugins.integrations.opentelemetry import configure_tracing

    # AutoGen's runtime spans (one per message delivery) bury the agent and model spans in the
    # console view; the user can still turn them on by setting the variable to "false".
    os.environ.setdefault("AUTOGEN_DISABLE_RUNTIME_TRACING", "true")
    # The CLI is an application, so it may install the global provider: AutoGen's own agent
    # spans then land in the same trace as ours.
    return configure_tracing(args.trace, endpoint=args.otlp_endpoint, set_global=True)


def shutdown(provider: Any) -> None:
    if provider is not None:
        with contextlib.suppress(Exception):  # tracing never breaks the command
            provider.shutdown()


# -- personas ------------------------------------------------------------------------------------


def catalog() -> dict[str, Persona]:
    """Every persona the loaded plugins register, by name."""
    from persona_plugins.pipeline import collect_personas
    from persona_plugins.plugins import get_plugin_manager

    return collect_personas(get_plugin_manager())


def require(persona: Persona | None) -> Persona:
    if persona is None:  # resolve_persona returns None only for None input
        raise UsageError("a persona name is required")
    return persona


# -- framework adapters --------------------------------------------------------------------------

#: ``--framework`` choice -> (the adapter's CLI module, the extra that installs the framework,
#: the framework's top-level packages). The CLI never imports a framework itself: each adapter's
#: ``_cli`` module does, and it is imported only when a command asks for that framework.
FRAMEWORKS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "autogen": (
        "persona_plugins.adapters.autogen._cli",
        "autogen",
        ("autogen_core", "autogen_agentchat", "autogen_ext"),
    ),
    "semantic-kernel": (
        "persona_plugins.adapters.semantic_kernel._cli",
        "semantic-kernel",
        ("semantic_kernel",),
    ),
    "agent-framework": (
        "persona_plugins.adapters.agent_framework._cli",
        "agent-framework",
        ("agent_framework", "agent_framework_orchestrations"),
    ),
}

#: A team member in the demo: the agent's name and its persona.
Member = tuple[str, Persona]


@dataclass(frozen=True)
class TeamRun:
    """What the demo asks of a framework's team: one persona agent per member, on ``model``,
    taking turns round-robin until each has given ``rounds`` replies to ``question``;
    ``on_reply(agent, text)`` as each reply arrives."""

    model: ChatModel
    members: Sequence[Member]
    question: str
    rounds: int
    tracer_provider: Any
    on_reply: Callable[[str, str], None]

    @property
    def replies(self) -> int:
        """How many replies the whole team gives."""
        return len(self.members) * self.rounds


class FrameworkCli(Protocol):
    """What an adapter's ``_cli`` module provides to the commands."""

    #: Added after the model in the demo summary ("" for none).
    DEMO_NOTE: str

    def ask(
        self, model: ChatModel, question: str, config: PipelineConfig, tracer_provider: Any
    ) -> Awaitable[Any]:
        """One turn through the adapter; returns the adapter's ``TurnResult``."""
        ...

    def run_team(self, run: TeamRun) -> Awaitable[list[tuple[int, int, int]]]:
        """Run the demo's team; returns ``(model calls, tokens in, tokens out)`` per member."""
        ...


def add_framework_option(
    parser: argparse.ArgumentParser, help: str, default: str | None = None
) -> None:
    """``--framework``: one of :data:`FRAMEWORKS` (``help`` says what it changes)."""
    parser.add_argument("--framework", choices=list(FRAMEWORKS), default=default, help=help)


def framework_cli(framework: str, command: str) -> FrameworkCli:
    """The CLI part of the adapter for ``framework``; a missing framework is a
    :class:`MissingExtraError` naming the command and the install line."""
    module, extra, packages = FRAMEWORKS[framework]
    try:
        return cast(FrameworkCli, importlib.import_module(module))
    except ImportError as exc:
        missing = exc.missing if isinstance(exc, MissingExtraError) else exc.name
        if isinstance(exc, MissingExtraError) or (missing or "").split(".")[0] in packages:
            raise MissingExtraError(f"{PROG} {command}", extra, missing=missing) from exc
        raise  # a broken adapter, not a missing framework: the traceback says where


# -- evaluation harnesses and interrupted runs ---------------------------------------------------


#: An evaluation harness given everything but the model and what :func:`run_harness` supplies
#: (``out_dir``, ``model_label``, ``progress``), e.g. ``functools.partial(run_refine_eval, items)``.
Harness = Callable[..., Coroutine[Any, Any, dict[str, Any]]]


def run_harness(args: argparse.Namespace, harness: Harness) -> dict[str, Any]:
    """Run an evaluation harness on the model the options name, writing to ``--out`` (with
    ``--trace``'s provider, shut down after), and return its summary. Ctrl-C cancels it at once
    (a model call still running in a worker thread is not waited for) and the KeyboardInterrupt
    says how much was saved."""
    from persona_plugins.evaluation.progress import Progress, run_interruptible

    provider = tracer_provider(args)
    model = build_model(args)
    progress = Progress()
    concurrency = getattr(args, "concurrency", None) or (
        SERVER_CONCURRENCY if base_urls(args) else 1
    )
    try:
        summary: dict[str, Any] = run_interruptible(
            harness(
                model,
                out_dir=Path(args.out),
                model_label=model_label(args),
                progress=progress,
                concurrency=concurrency,
            )
        )
    except KeyboardInterrupt:
        raise KeyboardInterrupt(progress.interrupted_note()) from None
    finally:
        shutdown(provider)
    summary["concurrency"] = concurrency
    stats = getattr(model, "server_stats", None)
    if callable(stats):  # a fleet: how the calls were spread
        summary["servers"] = stats()
    return summary


def print_summary(
    args: argparse.Namespace, summary: dict[str, Any], stem: str, note: str = ""
) -> int:
    """Print a harness's summary (``--json``: as JSON) and where its files were written."""
    if args.json:
        print(printable_json({k: v for k, v in summary.items() if k != "markdown"}, indent=2))
    else:
        print(printable(summary["markdown"]))
        servers = summary.get("servers")
        if servers:
            spread = ", ".join(
                f"{s['base_url']} {s['calls']}"
                + (f" ({s['failed']} failed)" if s["failed"] else "")
                for s in servers
            )
            print(f"\ncalls per server: {printable(spread, one_line=True)}")
        print(f"\nwritten to {args.out}/{stem}.{{jsonl,json,md}}{note}")
    return 0


def exit_now_if_calls_still_run(code: int) -> None:
    """End the process at once when an interrupted model call is still running in a worker
    thread: a llama.cpp call cannot be stopped, and letting the interpreter shut down under it can
    crash the process (results are already saved and the files closed by then)."""
    progress = sys.modules.get("persona_plugins.evaluation.progress")
    if progress is None or not progress.running_calls():
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
