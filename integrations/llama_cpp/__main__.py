"""``python -m persona_plugins.integrations.llama_cpp [path | check [--repair]]``.

- ``path`` (the default): print the path of the default GGUF file.
- ``check``: load the model in a child process and say whether this llama.cpp build runs on this
  CPU; exit 0 when it does, 3 when it crashes (printing the command that fixes it), 1 otherwise.
- ``check --repair``: when it crashes, rebuild llama-cpp-python for a portable CPU baseline (the
  printed command), then check again. ``make demo`` and ``make test`` run this after installing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence

from persona_plugins.errors import PersonaPluginsError
from persona_plugins.integrations.llama_cpp import _cpu
from persona_plugins.integrations.llama_cpp._model import LlamaCppChatModel, default_model_path

PROG = "python -m persona_plugins.integrations.llama_cpp"


def _check(model_path: str | None, *, repair: bool, dry_run: bool) -> int:
    model = LlamaCppChatModel(model_path)
    result = _cpu.run_probe(model.model_path, model.load_kwargs(), model.extra_buffers)
    if result is not None and result.ok:
        print(f"ok: llama.cpp runs {model.model_path.name} on this CPU ({_cpu.cpu_name()})")
        return 0
    if result is None:
        # Not a crash: load in-process to get the real error message.
        try:
            model.load()
        except PersonaPluginsError as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return 1
        print(f"ok: llama.cpp loads {model.model_path.name} (the probe gave no verdict)")
        return 0
    print(f"{PROG}: error: {_cpu.fault_message(result, model.model_path)}", file=sys.stderr)
    if not repair:
        return _cpu.EXIT_CPU_FAULT
    env = {**os.environ, "CMAKE_ARGS": _cpu.portable_cmake_args(), "FORCE_CMAKE": "1"}
    argv = _cpu.rebuild_argv()
    print(f'repairing: CMAKE_ARGS="{env["CMAKE_ARGS"]}" {" ".join(argv)}', flush=True)
    if dry_run:
        return _cpu.EXIT_CPU_FAULT
    if subprocess.run(argv, env=env, check=False).returncode != 0:
        print(f"{PROG}: error: the rebuild failed (see pip's output above)", file=sys.stderr)
        return 1
    # The rebuilt libraries have a new size and mtime, so this is a fresh probe, not a cached one.
    return _check(model_path, repair=False, dry_run=False)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["_probe-child"]:  # the probe's child process (see _cpu.run_probe)
        return _cpu.probe_child(args[1], args[2])
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("path", help="print the path of the default GGUF file (the default)")
    check = sub.add_parser("check", help="does this llama.cpp build run on this CPU?")
    check.add_argument("--model-path", help="a GGUF file (default: the shipped SmolLM2)")
    check.add_argument(
        "--repair",
        action="store_true",
        help="rebuild llama-cpp-python for a portable CPU baseline when the build crashes",
    )
    check.add_argument(
        "--dry-run", action="store_true", help="with --repair: print the rebuild, do not run it"
    )
    parsed = parser.parse_args(args)
    try:
        if parsed.command == "check":
            return _check(parsed.model_path, repair=parsed.repair, dry_run=parsed.dry_run)
        print(default_model_path())
    except PersonaPluginsError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
