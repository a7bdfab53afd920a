"""Write one section of ``benchmarks/RESULTS.md`` and leave every other section as it is.

Each benchmark owns one ``## heading``; running it again replaces that section only, so the file
keeps the latest result of every benchmark.
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"

HEADER = """# Benchmark results

Measured with `make bench` (which runs `python benchmarks/run_all.py`), or one script at a time
with the command given in each section. Benchmarks are not tests: nothing here fails the build,
and the numbers depend on the machine, so each section names the one it ran on.
"""


def machine_note() -> str:
    """One line naming the machine: cores, Python and OS."""
    return (
        f"{os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}"
    )


def update_section(heading: str, body: str, path: Path = RESULTS) -> Path:
    """Replace (or append) the ``## {heading}`` section of ``path`` with ``body``."""
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    section = f"## {heading}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(heading)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    path.write_text(text, encoding="utf-8")
    return path
