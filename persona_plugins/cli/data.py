"""``persona-plugins data``: where the public data sets the harnesses read are found, and
downloading them from their upstream repositories (verified by SHA-256)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from persona_plugins.cli._common import PROG
from persona_plugins.errors import DataNotFoundError


def add_parser(sub: Any) -> None:
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
    data.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "data_command", None) == "pull":
        return pull(args)
    return list_sets(args)


def list_sets(args: argparse.Namespace) -> int:
    from persona_plugins.evaluation.data_sources import describe

    data_dir = getattr(args, "data_dir", None)
    info = describe(data_dir)
    if getattr(args, "json", False):
        print(json.dumps(info, indent=2))
        return 0
    print("Data folders, in the order looked in (a set is read from the first with all its files):")
    for i, place in enumerate(info["search_path"], start=1):
        state = "" if place["exists"] else "  (no such folder)"
        print(f"  {i}. {place['path']}  [{place['label']}]{state}")
    into = info["search_path"][0]["path"] if data_dir else info["cache_dir"]
    flag = f" --cache-dir {into}" if data_dir else ""
    print(f"`{PROG} data pull NAME{flag}` downloads a set into {into}.")
    for entry in info["sets"]:
        _print_set(entry)
    return 0


def _print_set(entry: dict[str, Any]) -> None:
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


def pull(args: argparse.Namespace) -> int:
    from persona_plugins.evaluation.data_sources import (
        SOURCES,
        NotDownloadableError,
        PulledFile,
        default_cache_dir,
    )
    from persona_plugins.evaluation.data_sources import pull as pull_set

    names = list(SOURCES) if "all" in args.names else list(dict.fromkeys(args.names))
    folder = Path(args.cache_dir or default_cache_dir()).expanduser().resolve()
    print(f"pulling {', '.join(names)} into {folder}", flush=True)
    counts = {"downloaded": 0, "replaced": 0, "present": 0}
    incomplete: list[str] = []
    for name in names:
        results: list[PulledFile]
        try:
            results = pull_set(
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
