"""``persona-plugins plugins``: the loaded plugins and the hooks each implements."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_parser(sub: Any) -> None:
    plugins = sub.add_parser("plugins", help="list loaded plugins and the hooks they implement")
    plugins.add_argument("--json", action="store_true")
    plugins.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
