"""``persona-plugins personas``: list the catalog, show one persona and its system prompt, or
validate persona files (every problem of every file, one line each)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from persona_plugins.cli._common import catalog, printable, printable_json, require
from persona_plugins.errors import PersonaError
from persona_plugins.persona import Persona, resolve_persona


def add_parser(sub: Any) -> None:
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
    personas.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.personas_command == "list":
        return _list(args)
    if args.personas_command == "show":
        return _show(args)
    return _validate(args)


def _list(args: argparse.Namespace) -> int:
    rows = sorted(catalog().values(), key=lambda p: (str(p.metadata.get("kind", "")), p.name))
    if args.kind:
        rows = [p for p in rows if p.metadata.get("kind") == args.kind]
    if args.json:
        print(printable_json([p.model_dump(mode="json") for p in rows], indent=2))
        return 0
    print(f"{'name':<22} {'kind':<9} description")
    for p in rows:
        name = printable(p.name, one_line=True)
        kind = printable(p.metadata.get("kind", "-"), one_line=True)
        print(f"{name:<22} {kind:<9} {printable(p.description, one_line=True)}")
    return 0


def _show(args: argparse.Namespace) -> int:
    persona = require(resolve_persona(args.name, catalog()))
    if args.json:
        print(printable_json(persona.model_dump(mode="json"), indent=2))
        return 0
    from persona_plugins.injection import render_persona

    print(f"name: {printable(persona.name, one_line=True)}")
    print(f"description: {printable(persona.description)}")
    if persona.demographics:
        print(f"demographics: {printable(persona.demographics, one_line=True)}")
    print(f"\nsystem prompt ({args.template}):\n")
    print(printable(render_persona(persona, args.template)))
    return 0


def _validate(args: argparse.Namespace) -> int:
    """Every file, and every problem of each, one line per problem (file: field: what)."""
    failed = 0
    for path in args.files:
        try:
            persona = Persona.from_file(path)
        except PersonaError as exc:
            failed += 1
            for problem in exc.problems:
                print(printable(problem, one_line=True), file=sys.stderr, flush=True)
            continue
        summary = printable(f"{persona.name}: {persona.description[:60]}", one_line=True)
        print(f"{printable(path, one_line=True)}: ok ({summary})", flush=True)
    return 2 if failed else 0
