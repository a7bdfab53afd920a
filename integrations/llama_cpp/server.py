"""``python -m persona_plugins.integrations.llama_cpp.server``: llama-cpp-python's OpenAI-compatible
server, made safe for CPUs that advertise instructions they do not run.

It takes exactly the options of ``python -m llama_cpp.server`` (``--model``, ``--host``, ``--port``,
``--n_ctx``, ...; ``--model`` defaults to the shipped SmolLM2), and before serving it

- checks in a child process that this llama.cpp build runs the model on this CPU (see
  :mod:`~persona_plugins.integrations.llama_cpp._cpu`), printing the command that fixes it and
  exiting 3 if it does not, instead of dying on the first request;
- loads models with llama.cpp's extra buffer types off (the Intel AMX path that faults on many VMs),
  as :class:`~persona_plugins.integrations.llama_cpp.LlamaCppChatModel` does.

Needs the ``server`` extra (``pip install -e ".[server]"`` from a clone), which brings
``llama-cpp-python[server]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from persona_plugins.errors import MissingExtraError, ModelLoadError
from persona_plugins.integrations.llama_cpp import _cpu
from persona_plugins.integrations.llama_cpp._model import default_model_path

PROG = "python -m persona_plugins.integrations.llama_cpp.server"


def _model_arg(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--model" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--model="):
            return arg.split("=", 1)[1]
    return None


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        from llama_cpp.server.__main__ import main as serve
    except ImportError as exc:
        error = MissingExtraError(PROG, "server", missing=exc.name or "llama_cpp.server")
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    if "-h" not in args and "--help" not in args and "--config_file" not in args:
        model = _model_arg(args)
        if model is None:
            model = str(default_model_path())
            args = ["--model", model, *args]
        try:
            _cpu.ensure_runs_here(Path(model), {}, extra_buffers=False)
        except ModelLoadError as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return _cpu.EXIT_CPU_FAULT
    sys.argv = [PROG, *args]
    _cpu.turn_off_extra_buffer_types()  # for every model the server loads, now or later
    serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
