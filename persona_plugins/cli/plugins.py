"""``persona-plugins plugins``: the loaded plugins and the hooks each implements."""

from __future__ import annotations

import argparse
from typing import Any

from persona_plugins.cli._common import printable, printable_json


def add_parser(sub: Any) -> None:
    plugins = sub.add_parser("plugins", help="list loaded plugins and the hooks they implement")
    plugins.add_argument("--json", action="store_true")
    plugins.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from persona_plugins.plugins import describe_plugins

    rows = describe_plugins()
    if args.json:
        print(printable_json(rows, indent=2))
        return 0
    for row in rows:
        print(printable(f"{row['name']}  ({row['source']})", one_line=True))
        for hook in row["hooks"]:
            print(f"    {printable(hook, one_line=True)}")
    return 0
