"""``persona-plugins check``: the bias guardrail detectors on a text, a file or stdin, or on every
response of a JSON-lines log (``--jsonl``, with ``--workers`` processes).

Exit status 3 when ``--fail-on`` is met; 2 when the input is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from persona_plugins.cli import _common
from persona_plugins.cli._common import (
    UsageError,
    add_model_options,
    catalog,
    positive_int,
    printable,
    printable_json,
)
from persona_plugins.persona import resolve_persona

_SEVERITY_RANK = {"info": 0, "warning": 1, "high": 2}

# A positional `check` argument "looks like a path" when it is one word with a path separator or a
# file extension (reply.txt, out/answer, C:\x): a text never is that, a mistyped path usually is.
_PATH_LIKE = re.compile(r"^\S*[/\\]\S*$|^\S+\.[A-Za-z][A-Za-z0-9]{0,7}$")


def add_parser(sub: Any) -> None:
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
    check_source.add_argument(
        "--jsonl",
        metavar="FILE",
        help="check every response of a JSON-lines file (- for stdin): one object per line with "
        "'response' and optionally 'question', 'persona' (a catalog name) and 'id'; findings are "
        "written as JSON lines, then a summary; a bad line is reported and skipped",
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
    bulk = check.add_argument_group("bulk checks (--jsonl)")
    bulk.add_argument(
        "--workers",
        type=positive_int,
        metavar="N",
        help="processes checking the lines side by side (default: the cores)",
    )
    bulk.add_argument(
        "--out",
        metavar="FILE",
        help="write the findings there (default stdout; the summary then goes to stderr)",
    )
    add_model_options(check)
    check.set_defaults(func=run)


def _read_check_file(value: str) -> tuple[str, str]:
    if value == "-":
        return sys.stdin.read(), "stdin"
    path = Path(value)
    try:
        if not path.exists():
            raise UsageError(f"{value}: file not found")
        if not path.is_file():
            raise UsageError(f"{value}: not a file")
        return path.read_text(encoding="utf-8", errors="replace"), value
    except OSError as exc:
        raise UsageError(f"{value}: cannot read the file ({exc.strerror or exc})") from None


def read_check_input(args: argparse.Namespace) -> tuple[str, str]:
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
        raise UsageError("give the text to check, --file PATH, --text TEXT, or - for stdin")
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
        raise UsageError(
            f"{value}: {problem}. To check a file, give its right path with --file PATH; "
            f"to check these characters as text, use --text {value!r}"
        )
    return value, "text"


def run(args: argparse.Namespace) -> int:
    from persona_plugins.guardrails import BUILTIN_DETECTORS, check_text

    detectors = (
        [d.strip() for d in args.detectors.split(",") if d.strip()]
        if args.detectors
        else list(BUILTIN_DETECTORS)
    )
    if args.jsonl is not None:
        return run_bulk(args, detectors)
    for option in ("workers", "out"):
        if getattr(args, option) is not None:
            raise UsageError(f"--{option} goes with --jsonl FILE")
    text, source = read_check_input(args)
    model = _common.build_model(args) if _needs_model(detectors) else None
    persona = resolve_persona(args.persona, catalog()) if args.persona else None
    findings = check_text(
        text,
        messages=args.question or None,
        persona=persona,
        config={"guard": "monitor", "detectors": detectors},
        model=model,
    )
    if args.json:
        print(
            printable_json(
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
        origin = "" if source == "text" else f" from {printable(source, one_line=True)}"
        print(f"no findings ({', '.join(detectors)}; {len(text)} characters{origin} checked)")
    else:
        print(f"{'detector':<22} {'severity':<8} {'score':>5}  message")
        for f in findings:
            score = f"{f.score:.2f}" if f.score is not None else "-"
            detector, message = (
                printable(f.detector, one_line=True),
                printable(f.message, one_line=True),
            )
            print(f"{detector:<22} {f.severity:<8} {score:>5}  {message}")
            if f.evidence:
                print(f"{'':<38}evidence: {printable(f.evidence, one_line=True)}")
    if args.fail_on:
        limit = _SEVERITY_RANK[args.fail_on]
        if any(_SEVERITY_RANK.get(f.severity, 0) >= limit for f in findings):
            return 3
    return 0


def run_bulk(args: argparse.Namespace, detectors: list[str]) -> int:
    """``check --jsonl FILE``: every response of the file, findings as JSON lines, a summary."""
    from persona_plugins.evaluation.bulk_check import (
        BadLine,
        ScanSummary,
        default_workers,
        scan_lines,
    )

    _check_bulk_options(args, detectors)
    workers = args.workers or default_workers()
    source = _open_jsonl(args.jsonl)
    sink = _open_out(args.out)
    summary = ScanSummary()
    limit = _SEVERITY_RANK[args.fail_on] if args.fail_on else None
    failed = False
    started = time.perf_counter()
    try:
        for result in scan_lines(source, detectors, workers=workers):
            summary.add(result)
            if isinstance(result, BadLine):
                where = "stdin" if args.jsonl == "-" else args.jsonl
                print(
                    printable(
                        f"{where}: line {result.line}: {result.problem}; skipped", one_line=True
                    ),
                    file=sys.stderr,
                )
                continue
            for finding in result.findings:
                row = {"line": result.line, "id": result.id, "persona": result.persona, **finding}
                sink.write(printable_json(row, ensure_ascii=False) + "\n")
                if limit is not None and _SEVERITY_RANK.get(finding["severity"], 0) >= limit:
                    failed = True
        sink.flush()
    finally:
        if source is not sys.stdin.buffer:
            source.close()
        if sink is not sys.stdout:
            sink.close()
    elapsed = time.perf_counter() - started
    report = {
        **summary.as_dict(),
        "detectors": detectors,
        "workers": workers,
        "seconds": round(elapsed, 3),
        "responses_per_second": round(summary.responses / elapsed, 1) if elapsed else None,
    }
    stream = sys.stdout if args.out else sys.stderr
    if args.json:
        print(printable_json({"summary": report}, indent=2, ensure_ascii=False), file=stream)
    else:
        print(_bulk_report(report), file=stream)
    return 3 if failed else 0


def _check_bulk_options(args: argparse.Namespace, detectors: list[str]) -> None:
    """:class:`UsageError` for what ``--jsonl`` cannot go with: a question or persona for the
    whole file (each line gives its own), and the detectors' model checks."""
    for option in ("question", "persona"):
        if getattr(args, option) is not None:
            raise UsageError(f"--{option} does not go with --jsonl: each line gives its own")
    if _needs_model(detectors):
        raise UsageError(
            "--jsonl runs the offline detectors only; the model checks (':confirm', ':judge') "
            "need one model call per response: check those texts one by one"
        )


def _open_jsonl(value: str) -> Any:
    if value == "-":
        return sys.stdin.buffer
    path = Path(value)
    try:
        if not path.is_file():
            raise UsageError(f"{value}: {'not a file' if path.exists() else 'file not found'}")
        return path.open("rb")
    except OSError as exc:
        raise UsageError(f"{value}: cannot read the file ({exc.strerror or exc})") from None


def _open_out(value: str | None) -> Any:
    if value is None or value == "-":
        return sys.stdout
    try:
        return Path(value).open("w", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{value}: cannot write the findings ({exc.strerror or exc})") from None


def _bulk_report(report: dict[str, Any]) -> str:
    n, hit = report["responses"], report["responses_with_findings"]
    share = f" ({100 * hit / n:.1f}%)" if n else ""
    lines = [
        f"checked {n} responses with {report['workers']} worker"
        f"{'s' if report['workers'] != 1 else ''} in {report['seconds']:.1f} s"
        + (f" ({report['responses_per_second']:.0f} responses/s)" if n else "")
        + f": {hit} with findings{share}, {report['findings']} findings"
        + (f"; {report['bad_lines']} bad lines skipped" if report["bad_lines"] else "")
    ]
    if report["by_detector"]:
        lines += ["", f"{'detector':<24} {'info':>7} {'warning':>7} {'high':>7}"]
        for detector, counts in report["by_detector"].items():
            cells = " ".join(f"{counts.get(level, 0):>7}" for level in ("info", "warning", "high"))
            lines.append(f"{printable(detector, one_line=True):<24} {cells}")
    if report["personas"]:
        lines += ["", f"{'persona':<24} {'responses':>9} {'with findings':>13} {'rate':>6}"]
        for persona, counts in report["personas"].items():
            lines.append(
                f"{printable(persona, one_line=True):<24} {counts['responses']:>9} "
                f"{counts['with_findings']:>13} {100 * counts['rate']:>5.1f}%"
            )
    return "\n".join(lines)


def _needs_model(detectors: Sequence[str]) -> bool:
    """Whether a detector named asks for a model check (":confirm", ":judge"); the offline
    checks, toxicity's options among them, never load one."""
    return any(":" in d and not d.startswith("toxicity") for d in detectors)
