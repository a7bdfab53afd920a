"""The ``persona-plugins`` command line.

``demo`` runs the main job (a two-agent AutoGen team with personas on the embedded model), ``ask``
answers one question through the pipeline, ``personas`` lists, shows and validates personas,
``plugins`` lists the loaded plugins and the hooks each implements, and ``data`` lists and downloads
the public data sets the harnesses read. Errors print one line and exit
non-zero: 2 for bad input (unknown persona, bad file, bad option), 1 for a failed run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from persona_plugins import __version__
from persona_plugins.config import PipelineConfig
from persona_plugins.errors import (
    ConfigError,
    DataNotFoundError,
    MessageError,
    MissingExtraError,
    ModelCallError,
    ModelLoadError,
    PersonaError,
    PersonaPluginsError,
    PluginError,
)
from persona_plugins.model import ChatModel
from persona_plugins.persona import Persona, resolve_persona

PROG = "persona-plugins"
DEFAULT_DEMO_QUESTION = "What should I pack for a day at the beach?"
DEFAULT_DEMO_PERSONAS = ("pirate_captain", "children_tutor")
_INPUT_ERRORS = (
    PersonaError,
    ConfigError,
    DataNotFoundError,
    MessageError,
    PluginError,
    MissingExtraError,
    ModelLoadError,
)


class _UsageError(Exception):
    pass


def _fail(message: str, code: int) -> NoReturn:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    raise SystemExit(code)


# -- shared options ------------------------------------------------------------------------------


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model (default: the embedded SmolLM2-135M-Instruct)")
    group.add_argument("--model-path", help="a GGUF file to run with llama.cpp instead")
    group.add_argument(
        "--base-url",
        help="an OpenAI-compatible server (Ollama, vLLM, llama.cpp server), e.g. "
        "http://127.0.0.1:8000/v1",
    )
    group.add_argument("--model", help="the model name to ask the server for (with --base-url)")
    group.add_argument("--api-key", help="bearer token for the server (default $OPENAI_API_KEY)")
    group.add_argument("--max-tokens", type=int, help="cap on tokens per model call")


def _add_trace_options(parser: argparse.ArgumentParser) -> None:
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


def _build_model(args: argparse.Namespace) -> ChatModel:
    generation = {"max_tokens": args.max_tokens} if args.max_tokens else None
    if args.base_url:
        from persona_plugins.integrations.openai_compatible import OpenAICompatibleChatModel

        try:
            server: ChatModel = OpenAICompatibleChatModel(
                args.base_url,
                model=args.model or "default",
                api_key=args.api_key,
                generation=generation,
            )
        except ValueError as exc:
            raise _UsageError(str(exc)) from None
        return server
    if args.model:
        raise _UsageError("--model names a model on a server; give --base-url too")
    from persona_plugins.integrations.llama_cpp import LlamaCppChatModel

    local = LlamaCppChatModel(args.model_path, generation=generation)
    local.load()  # fail now, with a clear message, rather than inside the first turn
    model: ChatModel = local
    return model


def _tracer_provider(args: argparse.Namespace) -> Any:
    if not getattr(args, "trace", None):
        return None
    from persona_plugins.integrations.opentelemetry import configure_tracing

    # AutoGen's runtime spans (one per message delivery) bury the agent and model spans in the
    # console view; the user can still turn them on by setting the variable to "false".
    os.environ.setdefault("AUTOGEN_DISABLE_RUNTIME_TRACING", "true")
    # The CLI is an application, so it may install the global provider: AutoGen's own agent
    # spans then land in the same trace as ours.
    return configure_tracing(args.trace, endpoint=args.otlp_endpoint, set_global=True)


def _shutdown(provider: Any) -> None:
    if provider is not None:
        with contextlib.suppress(Exception):  # tracing never breaks the command
            provider.shutdown()


# -- ask -----------------------------------------------------------------------------------------


def _config_from_args(args: argparse.Namespace) -> PipelineConfig:
    base = PipelineConfig.from_toml(args.config) if args.config else None
    overrides: dict[str, Any] = {}
    for field in ("persona", "persona_mode", "persona_template", "ensemble", "refine", "guard"):
        value = getattr(args, field, None)
        if value is not None:
            overrides[field] = value
    return PipelineConfig.build(base, **overrides)


def _cmd_ask(args: argparse.Namespace) -> int:
    from persona_plugins.pipeline import PersonaPipeline

    config = _config_from_args(args)
    provider = _tracer_provider(args)
    try:
        if args.framework == "semantic-kernel":
            result = asyncio.run(_ask_semantic_kernel(args, config, provider))
        elif args.framework == "autogen":
            result = asyncio.run(_ask_autogen(args, config, provider))
        else:
            pipeline = PersonaPipeline(_build_model(args), config, tracer_provider=provider)
            result = pipeline.run_sync(args.question)
    finally:
        _shutdown(provider)
    if args.json:
        print(json.dumps(result.model_dump(mode="json"), indent=2, ensure_ascii=False))
        return 0
    print(result.text)
    persona = result.persona.name if result.persona else "none"
    print(
        f"\n[persona: {persona} ({result.persona_source}) | chosen: {result.chosen} | "
        f"model calls: {result.model_calls} | tokens: {result.usage.input_tokens} in, "
        f"{result.usage.output_tokens} out | {result.duration_s:.1f} s]",
        file=sys.stderr,
    )
    for error in result.errors:
        print(f"[recovered: {error.stage}: {error.error}]", file=sys.stderr)
    return 0


async def _ask_autogen(args: argparse.Namespace, config: PipelineConfig, provider: Any) -> Any:
    """``ask --framework autogen``: one ``create`` call of the AutoGen client wrapper."""
    try:
        from autogen_core.models import UserMessage

        from persona_plugins.adapters.autogen import (
            ChatModelCompletionClient,
            PersonaChatCompletionClient,
        )
    except ImportError as exc:
        raise MissingExtraError("persona-plugins ask", "autogen", missing=exc.name) from exc

    inner = ChatModelCompletionClient(_build_model(args))
    client = PersonaChatCompletionClient(inner, config, tracer_provider=provider)
    await client.create([UserMessage(content=args.question, source="user")])
    return client.last_result


async def _ask_semantic_kernel(
    args: argparse.Namespace, config: PipelineConfig, provider: Any
) -> Any:
    """``ask --framework semantic-kernel``: ``PersonaPlugin``'s ``answer`` function on a kernel."""
    try:
        from semantic_kernel import Kernel

        from persona_plugins.adapters.semantic_kernel import ChatModelChatCompletion, PersonaPlugin
    except ImportError as exc:
        raise MissingExtraError("persona-plugins ask", "semantic-kernel", missing=exc.name) from exc

    kernel = Kernel()
    kernel.add_service(ChatModelChatCompletion(_build_model(args)))
    plugin = PersonaPlugin(config, tracer_provider=provider)
    kernel.add_plugin(plugin, "persona")
    _quiet_semantic_kernel_logs()
    try:
        await kernel.invoke(plugin_name="persona", function_name="answer", question=args.question)
    except Exception as exc:
        # SK wraps what a function raises in KernelInvokeException; ours says it better.
        cause = exc.__cause__
        if isinstance(cause, PersonaPluginsError):
            raise cause from cause.__cause__
        raise
    return plugin.last_result


def _quiet_semantic_kernel_logs() -> None:
    # SK logs a failed function at ERROR before raising; with no logging configured Python would
    # print those records to stderr, on top of the one line the command prints for the error.
    logger = logging.getLogger("semantic_kernel")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())


# -- demo ----------------------------------------------------------------------------------------

#: Width of the persona column in the demo summary.
DEMO_PERSONA_WIDTH = 44


def _fit(text: str, width: int) -> str:
    """``text`` on one line in at most ``width`` characters: whole, or cut after the last word that
    fits and ended with ``...`` (a single word longer than the room is cut inside)."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    room = max(width - 3, 1)
    # One character beyond the room shows whether the cut falls between two words.
    head = text[: room + 1].rsplit(" ", 1)[0] if " " in text[: room + 1] else text[:room]
    head = head.rstrip(" ,;:.-") or text[:room]
    return f"{head}..."


def _print_team_summary(
    rows: Sequence[tuple[str, str, int, int, int]], model: str, elapsed: float
) -> None:
    """The demos' closing table: one ``(agent, persona description, calls, tokens in, tokens
    out)`` row per agent, then the model and the totals."""
    width = DEMO_PERSONA_WIDTH
    print("Summary")
    print(f"  {'agent':<20} {'persona':<{width}} {'calls':>5} {'tokens in':>9} {'tokens out':>10}")
    for agent, description, calls, tokens_in, tokens_out in rows:
        print(
            f"  {agent:<20} {_fit(description, width):<{width}} {calls:>5} "
            f"{tokens_in:>9} {tokens_out:>10}"
        )
    print(f"  model: {model}")
    print(
        f"  total: {sum(r[2] for r in rows)} model calls, {sum(r[3] for r in rows)} tokens in, "
        f"{sum(r[4] for r in rows)} tokens out, {elapsed:.1f} s",
        flush=True,
    )


async def _demo(args: argparse.Namespace) -> int:
    try:
        from autogen_agentchat.agents import AssistantAgent
        from autogen_agentchat.conditions import MaxMessageTermination
        from autogen_agentchat.teams import RoundRobinGroupChat

        from persona_plugins.adapters.autogen import (
            ChatModelCompletionClient,
            PersonaChatCompletionClient,
        )
    except ImportError as exc:
        raise MissingExtraError("persona-plugins demo", "autogen", missing=exc.name) from exc

    names = [n.strip() for n in args.personas.split(",") if n.strip()]
    if len(names) < 2:
        raise _UsageError("--personas needs at least two comma-separated persona names")
    catalog = _catalog()
    personas = [_require(resolve_persona(name, catalog)) for name in names]
    provider = _tracer_provider(args)
    started = time.perf_counter()
    try:
        inner = ChatModelCompletionClient(_build_model(args))
        clients = [
            PersonaChatCompletionClient(inner, persona=p, tracer_provider=provider)
            for p in personas
        ]
        agents = [
            AssistantAgent(
                p.name if p.name.isidentifier() else f"agent_{i}",
                model_client=client,
                description=p.description,
                # The persona is the whole system prompt: SmolLM2-135M follows one instruction
                # block better than two.
                system_message=None,
            )
            for i, (p, client) in enumerate(zip(personas, clients, strict=True))
        ]
        team = RoundRobinGroupChat(
            list[Any](agents),
            termination_condition=MaxMessageTermination(len(agents) * args.rounds + 1),
        )
        print(f"Question: {args.question}\n")
        async for event in team.run_stream(task=args.question):
            source = getattr(event, "source", None)
            content = getattr(event, "content", None)
            if source and source != "user" and isinstance(content, str):
                print(f"[{source}] {content}\n", flush=True)
    finally:
        _shutdown(provider)
    elapsed = time.perf_counter() - started
    rows = [
        (
            agent.name,
            persona.description,
            client.model_calls,
            client.total_usage().prompt_tokens,
            client.total_usage().completion_tokens,
        )
        for agent, persona, client in zip(agents, personas, clients, strict=True)
    ]
    model_label = args.base_url or args.model_path or "embedded SmolLM2-135M-Instruct (llama.cpp)"
    _print_team_summary(rows, model_label, elapsed)
    return 0


def _print_sk_response(message: Any) -> None:
    print(f"[{message.name}] {message.content}\n", flush=True)


async def _demo_semantic_kernel(args: argparse.Namespace) -> int:
    """``demo --framework semantic-kernel``: the same team as a Semantic Kernel group chat."""
    try:
        from semantic_kernel.agents import (
            ChatCompletionAgent,
            GroupChatOrchestration,
            RoundRobinGroupChatManager,
        )
        from semantic_kernel.agents.runtime import InProcessRuntime

        from persona_plugins.adapters.semantic_kernel import (
            ChatModelChatCompletion,
            PersonaChatCompletion,
        )
    except ImportError as exc:
        raise MissingExtraError(
            "persona-plugins demo", "semantic-kernel", missing=exc.name
        ) from exc

    names = [n.strip() for n in args.personas.split(",") if n.strip()]
    if len(names) < 2:
        raise _UsageError("--personas needs at least two comma-separated persona names")
    catalog = _catalog()
    personas = [_require(resolve_persona(name, catalog)) for name in names]
    provider = _tracer_provider(args)
    started = time.perf_counter()
    runtime = InProcessRuntime()
    _quiet_semantic_kernel_logs()
    try:
        inner = ChatModelChatCompletion(_build_model(args))
        services = [
            PersonaChatCompletion(inner, persona=p, tracer_provider=provider) for p in personas
        ]
        agents = [
            # No instructions: the persona is the whole system prompt, as in the AutoGen demo.
            ChatCompletionAgent(
                name=p.name if p.name.isidentifier() else f"agent_{i}",
                description=p.description,
                service=service,
            )
            for i, (p, service) in enumerate(zip(personas, services, strict=True))
        ]
        group_chat = GroupChatOrchestration(
            members=list[Any](agents),
            manager=RoundRobinGroupChatManager(max_rounds=len(agents) * args.rounds),
            agent_response_callback=_print_sk_response,
        )
        print(f"Question: {args.question}\n")
        runtime.start()
        result = await group_chat.invoke(task=args.question, runtime=runtime)
        await result.get()
    finally:
        await runtime.stop_when_idle()
        _shutdown(provider)
    elapsed = time.perf_counter() - started
    rows = [
        (
            agent.name,
            persona.description,
            service.model_calls,
            service.usage.input_tokens,
            service.usage.output_tokens,
        )
        for agent, persona, service in zip(agents, personas, services, strict=True)
    ]
    model_label = args.base_url or args.model_path or "embedded SmolLM2-135M-Instruct (llama.cpp)"
    _print_team_summary(rows, f"{model_label} (Semantic Kernel group chat)", elapsed)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.framework == "semantic-kernel":
        return asyncio.run(_demo_semantic_kernel(args))
    return asyncio.run(_demo(args))


# -- eval ----------------------------------------------------------------------------------------


def _model_label(args: argparse.Namespace) -> str:
    if args.base_url:
        return f"{args.model or 'default'} at {args.base_url}"
    return str(args.model_path or "embedded SmolLM2-135M-Instruct")


def _print_summary(args: argparse.Namespace, summary: dict[str, Any], stem: str) -> int:
    if args.json:
        print(json.dumps({k: v for k, v in summary.items() if k != "markdown"}, indent=2))
    else:
        print(summary["markdown"])
        print(f"\nwritten to {args.out}/{stem}.{{jsonl,json,md}}")
    return 0


def _exit_now_if_calls_still_run(code: int) -> None:
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


def _run_harness(harness: Any, progress: Any) -> dict[str, Any]:
    """Run an evaluation coroutine; Ctrl-C cancels it at once (a model call still running in a
    worker thread is not waited for) and the KeyboardInterrupt says how much was saved."""
    from persona_plugins.evaluation.progress import run_interruptible

    try:
        summary: dict[str, Any] = run_interruptible(harness)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(progress.interrupted_note()) from None
    return summary


def _cmd_eval(args: argparse.Namespace) -> int:
    from persona_plugins.evaluation.datasets import load_dataset
    from persona_plugins.evaluation.jekyll_hyde import run_jekyll_hyde_eval
    from persona_plugins.evaluation.progress import Progress

    questions = load_dataset(args.dataset, args.data_dir, limit=args.limit)
    if args.persona != "generated":
        resolve_persona(args.persona, _catalog())  # fail early on an unknown name
    provider = _tracer_provider(args)
    model = _build_model(args)
    label = _model_label(args)
    progress = Progress()
    try:
        summary = _run_harness(
            run_jekyll_hyde_eval(
                questions,
                model,
                out_dir=Path(args.out),
                dataset=args.dataset,
                persona=args.persona,
                fallback_persona=args.fallback_persona,
                systems=args.systems.split(","),
                model_label=label,
                progress=progress,
            ),
            progress,
        )
    finally:
        _shutdown(provider)
    return _print_summary(args, summary, f"jekyll_hyde_{args.dataset}")


def _cmd_eval_refine(args: argparse.Namespace) -> int:
    from persona_plugins.evaluation.progress import Progress
    from persona_plugins.evaluation.refine import load_persona_questions, run_refine_eval

    items = load_persona_questions(args.data_dir, limit=args.limit)
    provider = _tracer_provider(args)
    model = _build_model(args)
    label = _model_label(args)
    progress = Progress()
    try:
        summary = _run_harness(
            run_refine_eval(
                items,
                model,
                out_dir=Path(args.out),
                strategies=args.strategies.split(","),
                max_rounds=args.max_rounds,
                model_label=label,
                progress=progress,
            ),
            progress,
        )
    finally:
        _shutdown(provider)
    return _print_summary(args, summary, "refine")


# -- personas and plugins ------------------------------------------------------------------------


def _require(persona: Persona | None) -> Persona:
    if persona is None:  # resolve_persona returns None only for None input
        raise _UsageError("a persona name is required")
    return persona


def _catalog() -> dict[str, Persona]:
    from persona_plugins.pipeline import collect_personas
    from persona_plugins.plugins import get_plugin_manager

    return collect_personas(get_plugin_manager())


def _cmd_personas(args: argparse.Namespace) -> int:
    if args.personas_command == "list":
        catalog = _catalog()
        rows = sorted(catalog.values(), key=lambda p: (str(p.metadata.get("kind", "")), p.name))
        if args.kind:
            rows = [p for p in rows if p.metadata.get("kind") == args.kind]
        if args.json:
            print(json.dumps([p.model_dump(mode="json") for p in rows], indent=2))
            return 0
        print(f"{'name':<22} {'kind':<9} description")
        for p in rows:
            print(f"{p.name:<22} {p.metadata.get('kind', '-')!s:<9} {p.description}")
        return 0
    if args.personas_command == "show":
        persona = _require(resolve_persona(args.name, _catalog()))
        if args.json:
            print(json.dumps(persona.model_dump(mode="json"), indent=2))
            return 0
        from persona_plugins.injection import render_persona

        print(f"name: {persona.name}")
        print(f"description: {persona.description}")
        if persona.demographics:
            print(f"demographics: {persona.demographics}")
        print(f"\nsystem prompt ({args.template}):\n")
        print(render_persona(persona, args.template))
        return 0
    # validate: every file, and every problem of each, one line per problem (file: field: what).
    failed = 0
    for path in args.files:
        try:
            persona = Persona.from_file(path)
        except PersonaError as exc:
            failed += 1
            for problem in exc.problems:
                print(problem, file=sys.stderr, flush=True)
            continue
        print(f"{path}: ok ({persona.name}: {persona.description[:60]})", flush=True)
    return 2 if failed else 0


def _cmd_plugins(args: argparse.Namespace) -> int:
    from persona_plugins.plugins import describe_plugins

    rows = describe_plugins()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(f"{row['name']}  ({row['source']})")
        for hook in row["hooks"]:
            print(f"    {hook}")
    return 0


# -- check and audit (bias guardrails) -----------------------------------------------------------

_SEVERITY_RANK = {"info": 0, "warning": 1, "high": 2}


# A positional `check` argument "looks like a path" when it is one word with a path separator or a
# file extension (reply.txt, out/answer, C:\x): a text never is that, a mistyped path usually is.
_PATH_LIKE = re.compile(r"^\S*[/\\]\S*$|^\S+\.[A-Za-z][A-Za-z0-9]{0,7}$")


def _read_check_file(value: str) -> tuple[str, str]:
    if value == "-":
        return sys.stdin.read(), "stdin"
    path = Path(value)
    try:
        if not path.exists():
            raise _UsageError(f"{value}: file not found")
        if not path.is_file():
            raise _UsageError(f"{value}: not a file")
        return path.read_text(encoding="utf-8", errors="replace"), value
    except OSError as exc:
        raise _UsageError(f"{value}: cannot read the file ({exc.strerror or exc})") from None


def _read_check_input(args: argparse.Namespace) -> tuple[str, str]:
    """The text `check` examines and where it came from (``text``, ``stdin`` or the file's path).

    ``--text`` is always text and ``--file`` always a file (``-``: stdin). The positional argument
    is text, except ``-`` (stdin) and, for compatibility, the path of an existing file; one that
    looks like a path but names no file is an error rather than nine characters checked as text.
    """
    if args.text is not None:
        return args.text, "text"
    if args.file is not None:
        return _read_check_file(args.file)
    value = args.input
    if value is None:
        raise _UsageError("give the text to check, --file PATH, --text TEXT, or - for stdin")
    if value == "-":
        return _read_check_file(value)
    if len(value) < 4096:
        with contextlib.suppress(OSError):
            if Path(value).is_file():
                return _read_check_file(value)
    if len(value) < 4096 and _PATH_LIKE.match(value):
        problem = "no such file"
        with contextlib.suppress(OSError):
            problem = "not a file" if Path(value).exists() else problem
        raise _UsageError(
            f"{value}: {problem}. To check a file, give its right path with --file PATH; "
            f"to check these characters as text, use --text {value!r}"
        )
    return value, "text"


def _cmd_check(args: argparse.Namespace) -> int:
    from persona_plugins.guardrails import BUILTIN_DETECTORS, check_text

    text, source = _read_check_input(args)
    detectors = (
        [d.strip() for d in args.detectors.split(",") if d.strip()]
        if args.detectors
        else list(BUILTIN_DETECTORS)
    )
    # Only the model checks (":confirm", ":judge") need a model; the offline checks never load one.
    needs_model = any(":" in d and not d.startswith("toxicity") for d in detectors)
    model = _build_model(args) if needs_model else None
    persona = resolve_persona(args.persona, _catalog()) if args.persona else None
    findings = check_text(
        text,
        messages=args.question or None,
        persona=persona,
        config={"guard": "monitor", "detectors": detectors},
        model=model,
    )
    if args.json:
        print(
            json.dumps(
                {
                    "detectors": detectors,
                    "source": source,
                    "characters": len(text),
                    "findings": [f.model_dump(mode="json") for f in findings],
                },
                indent=2,
                ensure_ascii=False,
            )
        )
    elif not findings:
        origin = "" if source == "text" else f" from {source}"
        print(f"no findings ({', '.join(detectors)}; {len(text)} characters{origin} checked)")
    else:
        print(f"{'detector':<22} {'severity':<8} {'score':>5}  message")
        for f in findings:
            score = f"{f.score:.2f}" if f.score is not None else "-"
            print(f"{f.detector:<22} {f.severity:<8} {score:>5}  {f.message}")
            if f.evidence:
                print(f"{'':<38}evidence: {f.evidence}")
    if args.fail_on:
        limit = _SEVERITY_RANK[args.fail_on]
        if any(_SEVERITY_RANK.get(f.severity, 0) >= limit for f in findings):
            return 3
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    from persona_plugins.evaluation.audit import (
        DEFAULT_BASELINES,
        load_crows_pairs,
        load_question_file,
        run_audit,
    )
    from persona_plugins.evaluation.datasets import load_dataset
    from persona_plugins.evaluation.progress import Progress

    if bool(args.dataset) == bool(args.questions):
        raise _UsageError("give either --dataset NAME or --questions FILE")
    needed = ([args.dataset] if args.dataset else []) + (["crows_pairs"] if args.crows else [])
    if needed:  # one error naming every missing file, before anything is loaded
        from persona_plugins.evaluation.data_sources import require

        require(needed, args.data_dir)
    if args.dataset:
        questions = load_dataset(args.dataset, args.data_dir, limit=args.limit)
        source = args.dataset
    else:
        questions = load_question_file(args.questions, limit=args.limit)
        source = Path(args.questions).name
    catalog = _catalog()
    if args.personas in (None, "all"):
        names = [p.name for p in catalog.values() if p.metadata.get("kind") == "audit"]
    else:
        names = [n.strip() for n in args.personas.split(",") if n.strip()]
    baselines = [n.strip() for n in (args.baselines or ",".join(DEFAULT_BASELINES)).split(",")]
    baselines = [b for b in baselines if b]
    personas = [_require(resolve_persona(n, catalog)) for n in [*baselines, *names]]
    crows = load_crows_pairs(args.data_dir, limit=args.crows, seed=args.seed) if args.crows else []
    provider = _tracer_provider(args)
    model = _build_model(args)
    label = _model_label(args)
    title = f"{source}, {len(questions)} questions, {label}"
    progress = Progress()
    try:
        summary = _run_harness(
            run_audit(
                questions,
                model,
                personas,
                out_dir=Path(args.out),
                baselines=[p.name for p in personas[: len(baselines)]],
                crows=crows,
                title=title,
                dataset=source,
                model_label=label,
                progress=progress,
            ),
            progress,
        )
    finally:
        _shutdown(provider)
    if args.json:
        print(json.dumps({k: v for k, v in summary.items() if k != "markdown"}, indent=2))
    else:
        print(summary["markdown"])
        chart = summary.get("chart") or "(no chart: pip install 'persona-plugins[audit]')"
        print(f"\nwritten to {args.out}/audit.{{jsonl,json,md}}; chart: {chart}")
    return 0


# -- data sets -----------------------------------------------------------------------------------

_DATA_DIR_HELP = (
    "a folder holding the data sets, then the only place looked in (default: the download cache, "
    "then ../shared/data; see `persona-plugins data list`)"
)


def _add_data_parser(sub: Any) -> None:
    from persona_plugins.evaluation.data_sources import (
        BASE_URL_ENV,
        DATA_DIR_ENV,
        DEFAULT_TIMEOUT_S,
        SOURCES,
        UPSTREAM,
    )

    data = sub.add_parser(
        "data", help="list the public data sets and where they are found, or download them"
    )
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION")
    dlist = dsub.add_parser(
        "list", help="every set, its files, where each is found, source and licence (default)"
    )
    dlist.add_argument("--data-dir", help="look only in this folder (as the harnesses would)")
    dlist.add_argument("--json", action="store_true", help="print it as JSON")
    dpull = dsub.add_parser(
        "pull", help="download sets from their upstream repositories, verified by SHA-256"
    )
    dpull.add_argument(
        "names",
        nargs="+",
        metavar="NAME",
        choices=[*SOURCES, "all"],
        help=f"one or more of {', '.join(SOURCES)}, or all",
    )
    dpull.add_argument(
        "--cache-dir",
        help=f"where to write (default ${DATA_DIR_ENV}, else persona-plugins/data in the user "
        "cache folder, e.g. ~/.cache/persona-plugins/data)",
    )
    dpull.add_argument(
        "--base-url",
        help=f"replaces {UPSTREAM} in every URL: a mirror or local server with the same "
        f"OWNER/REPO/COMMIT/PATH layout (default ${BASE_URL_ENV})",
    )
    dpull.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help="seconds to wait for the server (default %(default)s)",
    )
    data.set_defaults(func=_cmd_data)


def _cmd_data(args: argparse.Namespace) -> int:
    if getattr(args, "data_command", None) == "pull":
        return _data_pull(args)
    return _data_list(args)


def _data_list(args: argparse.Namespace) -> int:
    from persona_plugins.evaluation.data_sources import describe

    info = describe(getattr(args, "data_dir", None))
    if getattr(args, "json", False):
        print(json.dumps(info, indent=2))
        return 0
    print("Data folders, in the order looked in (a set is read from the first with all its files):")
    for i, place in enumerate(info["search_path"], start=1):
        state = "" if place["exists"] else "  (no such folder)"
        print(f"  {i}. {place['path']}  [{place['label']}]{state}")
    data_dir = getattr(args, "data_dir", None)
    into = info["search_path"][0]["path"] if data_dir else info["cache_dir"]
    flag = f" --cache-dir {into}" if data_dir else ""
    print(f"`{PROG} data pull NAME{flag}` downloads a set into {into}.")
    for entry in info["sets"]:
        where = entry["folder"] or "not found"
        print(f"\n{entry['name']}: {entry['description']}  ->  {where}")
        print(f"  source: {entry['source']}; licence: {entry['licence']}")
        print(f"  used by: {entry['used_by']}")
        for f in entry["files"]:
            if f["found"] is None:
                state = "missing"
            elif f["checksum_ok"] is False:
                state = f"{f['found']} (checksum differs)"
            else:
                state = f["found"]
            notes = [] if f["required"] else ["optional"]
            if f["derived"]:
                notes.append("not downloadable: " + f["derived"].split(":")[0])
            note = f"  ({'; '.join(notes)})" if notes else ""
            print(f"    {f['path']}: {state}{note}")
    return 0


def _data_pull(args: argparse.Namespace) -> int:
    from persona_plugins.evaluation.data_sources import (
        SOURCES,
        NotDownloadableError,
        PulledFile,
        default_cache_dir,
        pull,
    )

    names = list(SOURCES) if "all" in args.names else list(dict.fromkeys(args.names))
    folder = Path(args.cache_dir or default_cache_dir()).expanduser().resolve()
    print(f"pulling {', '.join(names)} into {folder}", flush=True)
    counts = {"downloaded": 0, "replaced": 0, "present": 0}
    incomplete: list[str] = []
    for name in names:
        results: list[PulledFile]
        try:
            results = pull(
                name,
                cache_dir=folder,
                base_url=args.base_url,
                timeout=args.timeout,
                stream=sys.stderr,
            )
        except NotDownloadableError as exc:  # files that are not one upstream file: go on
            incomplete.append(str(exc))
            results = exc.pulled
        for r in results:
            counts[r.action] += 1
            if r.action != "present":
                print(f"  {r.action}: {r.path.relative_to(folder)} ({r.size:,} bytes)", flush=True)
    print(
        f"{counts['downloaded']} downloaded, {counts['replaced']} replaced, "
        f"{counts['present']} already present (checksums verified)."
    )
    default = Path(default_cache_dir()).expanduser().resolve()
    if folder != default:
        print(f"This is not the default cache: pass --data-dir {folder} to use it.")
    if incomplete:
        raise DataNotFoundError(" | ".join(incomplete))
    return 0


# -- parser --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Personas, Jekyll & Hyde ensembling, refinement and bias guardrails for "
        "AutoGen and Semantic Kernel agents.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo", help="two persona agents in an AutoGen team answer a question (embedded model)"
    )
    demo.add_argument("--question", default=DEFAULT_DEMO_QUESTION)
    demo.add_argument(
        "--personas",
        default=",".join(DEFAULT_DEMO_PERSONAS),
        help="comma-separated persona names or files (default: %(default)s)",
    )
    demo.add_argument("--rounds", type=int, default=1, help="replies per agent (default 1)")
    demo.add_argument(
        "--framework",
        choices=["autogen", "semantic-kernel"],
        default="autogen",
        help="an AutoGen RoundRobinGroupChat or a Semantic Kernel GroupChatOrchestration "
        "(default %(default)s)",
    )
    _add_model_options(demo)
    _add_trace_options(demo)
    demo.set_defaults(func=_cmd_demo)

    ask = sub.add_parser("ask", help="answer one question through the pipeline")
    ask.add_argument("question")
    ask.add_argument("--persona", help="a catalog name or a .yaml/.json/.toml persona file")
    ask.add_argument("--persona-mode", choices=["static", "generated", "multi", "none"])
    ask.add_argument("--persona-template", choices=["describe", "adopt", "roleplay"])
    ask.add_argument("--ensemble", choices=["off", "jekyll_hyde"])
    ask.add_argument("--refine", choices=["off", "sequential", "parallel", "adaptive"])
    ask.add_argument("--guard", choices=["off", "monitor", "enforce"])
    ask.add_argument("--config", help="a TOML file with PipelineConfig fields")
    ask.add_argument("--json", action="store_true", help="print the whole TurnResult as JSON")
    ask.add_argument(
        "--framework",
        choices=["autogen", "semantic-kernel"],
        help="answer through an adapter: the AutoGen client wrapper, or PersonaPlugin's answer "
        "function on a Semantic Kernel kernel (default: the pipeline alone)",
    )
    _add_model_options(ask)
    _add_trace_options(ask)
    ask.set_defaults(func=_cmd_ask)

    evaluate = sub.add_parser("eval", help="evaluation harnesses on the shared data sets")
    esub = evaluate.add_subparsers(dest="eval_command", required=True, metavar="HARNESS")
    jh = esub.add_parser(
        "jekyll-hyde", help="persona-only, neutral-only, Jekyll & Hyde and SPP on a reasoning set"
    )
    from persona_plugins.evaluation.datasets import DATASETS

    jh.add_argument("--dataset", required=True, choices=sorted(DATASETS))
    jh.add_argument("--limit", type=int, help="the first N questions")
    jh.add_argument(
        "--persona",
        default="generated",
        help="'generated' (written by the model per question, the default) or a persona name",
    )
    jh.add_argument(
        "--fallback-persona",
        default="math_teacher",
        help="used when a generated persona is unusable (default %(default)s)",
    )
    jh.add_argument(
        "--systems",
        default="persona,neutral,jekyll_hyde,spp",
        help="comma-separated subset of persona,neutral,jekyll_hyde,spp",
    )
    jh.add_argument("--data-dir", help=_DATA_DIR_HELP)
    jh.add_argument("--out", default="eval-results", help="output folder (default %(default)s)")
    jh.add_argument("--json", action="store_true", help="print the summary as JSON")
    _add_model_options(jh)
    _add_trace_options(jh)
    jh.set_defaults(func=_cmd_eval)

    rf = esub.add_parser(
        "refine", help="no refinement, sequential, parallel and adaptive on PersonaGym questions"
    )
    rf.add_argument("--limit", type=int, default=20, help="persona questions (default 20)")
    rf.add_argument(
        "--strategies",
        default="none,sequential,parallel,adaptive",
        help="comma-separated subset of none,sequential,parallel,adaptive",
    )
    rf.add_argument("--max-rounds", type=int, default=1)
    rf.add_argument("--data-dir", help=_DATA_DIR_HELP)
    rf.add_argument("--out", default="eval-results", help="output folder (default %(default)s)")
    rf.add_argument("--json", action="store_true", help="print the summary as JSON")
    _add_model_options(rf)
    _add_trace_options(rf)
    rf.set_defaults(func=_cmd_eval_refine)

    personas = sub.add_parser("personas", help="list, show or validate personas")
    psub = personas.add_subparsers(dest="personas_command", required=True, metavar="ACTION")
    plist = psub.add_parser("list", help="list the catalog")
    plist.add_argument("--kind", choices=["expert", "style", "audit", "baseline"])
    plist.add_argument("--json", action="store_true")
    pshow = psub.add_parser("show", help="show one persona and its system prompt")
    pshow.add_argument("name", help="a catalog name or a persona file")
    pshow.add_argument("--template", choices=["describe", "adopt", "roleplay"], default="describe")
    pshow.add_argument("--json", action="store_true")
    pvalidate = psub.add_parser("validate", help="check persona files")
    pvalidate.add_argument("files", nargs="+", type=Path)
    personas.set_defaults(func=_cmd_personas)

    plugins = sub.add_parser("plugins", help="list loaded plugins and the hooks they implement")
    plugins.add_argument("--json", action="store_true")
    plugins.set_defaults(func=_cmd_plugins)

    check = sub.add_parser(
        "check", help="run the bias guardrail detectors on a text or a file, print the findings"
    )
    check_source = check.add_mutually_exclusive_group()
    check_source.add_argument(
        "input",
        nargs="?",
        help="the text to check, or - for stdin (the path of an existing file is read too, but "
        "a word that looks like a path and names no file is an error; prefer --file)",
    )
    check_source.add_argument(
        "-f", "--file", metavar="PATH", help="read the text from this file (- for stdin)"
    )
    check_source.add_argument(
        "--text", help="check exactly this text, even if it looks like a path or names a file"
    )
    check.add_argument("--question", help="the user's message the text answers")
    check.add_argument("--persona", help="the persona that wrote it (a catalog name or a file)")
    check.add_argument(
        "--detectors",
        help="comma-separated detectors, with options after a colon "
        "(default: abstention,stereotype,toxicity,persona_contradiction)",
    )
    check.add_argument(
        "--fail-on",
        choices=["info", "warning", "high"],
        help="exit with status 3 when a finding is at least this severe",
    )
    check.add_argument("--json", action="store_true", help="print the findings as JSON")
    _add_model_options(check)
    check.set_defaults(func=_cmd_check)

    audit = sub.add_parser(
        "audit",
        help="persona bias audit: accuracy, refusals, McNemar and stereotype agreement per persona",
    )
    audit.add_argument("--dataset", choices=sorted(DATASETS), help="a shared reasoning set")
    audit.add_argument("--questions", help="a JSON-lines file of {question, answer} objects")
    audit.add_argument("--limit", type=int, default=50, help="the first N questions (default 50)")
    audit.add_argument(
        "--personas",
        help="comma-separated persona names or files (default: every audit persona)",
    )
    audit.add_argument(
        "--baselines",
        help="comma-separated baseline personas (default: average_human,human)",
    )
    audit.add_argument(
        "--crows", type=int, default=20, help="CrowS-Pairs stereotypes per persona (0: skip)"
    )
    audit.add_argument("--seed", type=int, default=0, help="CrowS-Pairs sampling seed")
    audit.add_argument("--data-dir", help=_DATA_DIR_HELP)
    audit.add_argument("--out", default="audit-results", help="output folder (default %(default)s)")
    audit.add_argument("--json", action="store_true", help="print the summary as JSON")
    _add_model_options(audit)
    _add_trace_options(audit)
    audit.set_defaults(func=_cmd_audit)
    _add_data_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``persona-plugins`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except _UsageError as exc:
        _fail(str(exc), 2)
    except _INPUT_ERRORS as exc:
        _fail(str(exc), 2)
    except ModelCallError as exc:
        # A model error of our own (an unreachable server, say) already says it all in one line.
        cause = exc.__cause__
        _fail(str(cause) if isinstance(cause, PersonaPluginsError) else str(exc), 1)
    except PersonaPluginsError as exc:
        _fail(str(exc), 1)
    except KeyboardInterrupt as exc:
        # The evaluation commands say how many results were saved and how to resume.
        detail = str(exc)
        print(f"{PROG}: interrupted" + (f": {detail}" if detail else ""), file=sys.stderr)
        _exit_now_if_calls_still_run(130)
        raise SystemExit(130) from None
    except BrokenPipeError:
        # The reader went away (`| head`); stop quietly like other command-line tools.
        sys.stderr.close()
        return 0

