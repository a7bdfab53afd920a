"""The ``persona-plugins`` command line.

``demo`` runs the main job (a two-agent AutoGen team with personas on the embedded model), ``ask``
answers one question through the pipeline, ``eval`` runs the evaluation harnesses, ``personas``
lists, shows and validates personas, ``plugins`` lists the loaded plugins and the hooks each
implements, ``check`` and ``audit`` run the bias guardrails, and ``data`` lists and downloads the
public data sets the harnesses read. Errors print one line and exit non-zero: 2 for bad input
(unknown persona, bad file, bad option, a framework not installed), 1 for a failed run.

One module per command group; ``_common`` holds what they share. No module here imports an agent
framework: the framework-specific parts (the demo teams, ``ask --framework``) live in each
adapter's ``_cli`` module, imported only when a command asks for that framework.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from persona_plugins import __version__
from persona_plugins.cli import ask, audit, check, data, demo, evaluate, personas, plugins
from persona_plugins.cli._common import (
    INPUT_ERRORS,
    PROG,
    UsageError,
    exit_now_if_calls_still_run,
    fail,
    printable,
)
from persona_plugins.errors import ModelCallError, PersonaPluginsError

__all__ = ["PROG", "build_parser", "main"]

#: The command groups, in the order ``--help`` lists them.
COMMANDS = (demo, ask, evaluate, personas, plugins, check, audit, data)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Personas, Jekyll & Hyde ensembling, refinement and bias guardrails for "
        "AutoGen and Semantic Kernel agents.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``persona-plugins`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except UsageError as exc:
        fail(str(exc), 2)
    except INPUT_ERRORS as exc:
        fail(str(exc), 2)
    except ModelCallError as exc:
        # A model error of our own (an unreachable server, say) already says it all in one line.
        cause = exc.__cause__
        fail(str(cause) if isinstance(cause, PersonaPluginsError) else str(exc), 1)
    except PersonaPluginsError as exc:
        fail(str(exc), 1)
    except KeyboardInterrupt as exc:
        # The evaluation commands say how many results were saved and how to resume.
        detail = str(exc)
        print(
            f"{PROG}: interrupted" + (f": {printable(detail)}" if detail else ""), file=sys.stderr
        )
        exit_now_if_calls_still_run(130)
        raise SystemExit(130) from None
    except BrokenPipeError:
        # The reader went away (`| head`); stop quietly like other command-line tools.
        sys.stderr.close()
        return 0
