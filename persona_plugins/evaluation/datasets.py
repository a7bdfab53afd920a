"""Reasoning data sets as a list of :class:`Question`, read from a data folder.

The files sit under ``reasoning/`` in a data folder. Where each set comes from, the places looked
in (``--data-dir``; the download cache filled by ``persona-plugins data pull NAME``;
``../shared/data``) and the download itself are in :mod:`persona_plugins.evaluation.data_sources`.
A set that is in none of those places raises :class:`DataNotFoundError` naming the missing files,
each place looked in, and what to do.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from persona_plugins.answers import extract_number
from persona_plugins.errors import DataNotFoundError
from persona_plugins.evaluation.data_sources import DATA_DIR_ENV, locate, search_path

__all__ = [
    "DATASETS",
    "DATA_DIR_ENV",
    "DataNotFoundError",
    "Question",
    "find_data_dir",
    "load_dataset",
]

AnswerFormat = Literal["number", "choice", "yes_no"]
_LETTERS = "ABCDEFGHIJ"


@dataclass(frozen=True)
class Question:
    """One question with its gold answer, in the normalised form the extractors produce."""

    id: str
    text: str
    gold: str
    answer_format: AnswerFormat


def find_data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The first folder of the search path that has a ``reasoning/`` folder.

    Kept for callers of earlier versions; the loaders use
    :func:`~persona_plugins.evaluation.data_sources.locate`, which checks the files a set needs.
    """
    places = search_path(explicit)
    for place in places:
        if (place.path / "reasoning").is_dir():
            return place.path
    looked = "; ".join(f"{p.path} ({p.label})" for p in places)
    raise DataNotFoundError(
        f"no data folder with a reasoning/ folder found; looked in {looked}. Run "
        f"`persona-plugins data pull NAME`, or pass --data-dir DIR (or set {DATA_DIR_ENV}=DIR)."
    )


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _choices(options: list[str]) -> str:
    return "Answer Choices: " + " ".join(f"({_LETTERS[i]}) {o}" for i, o in enumerate(options))


def _gsm8k(folder: Path) -> list[Question]:
    rows = _jsonl(folder / "gsm8k_test.jsonl")
    out = []
    for i, row in enumerate(rows):
        gold = extract_number(row["answer"].split("####")[-1]) or ""
        out.append(Question(f"gsm8k-{i}", row["question"], gold, "number"))
    return out


def _svamp(folder: Path) -> list[Question]:
    rows = json.loads((folder / "svamp.json").read_text(encoding="utf-8"))
    return [
        Question(
            str(row.get("ID", f"svamp-{i}")),
            f"{row['Body'].strip()} {row['Question'].strip()}",
            extract_number(str(row["Answer"])) or "",
            "number",
        )
        for i, row in enumerate(rows)
    ]


def _aqua(folder: Path) -> list[Question]:
    out = []
    for i, row in enumerate(_jsonl(folder / "aqua_test.jsonl")):
        options = [o.split(")", 1)[1].strip() if ")" in o else o for o in row["options"]]
        text = f"{row['question']}\n{_choices(options)}"
        out.append(Question(f"aqua-{i}", text, row["correct"].strip().upper(), "choice"))
    return out


def _bigbench_yes_no(folder: Path, filename: str, prefix: str) -> list[Question]:
    data = json.loads((folder / filename).read_text(encoding="utf-8"))
    out = []
    for i, example in enumerate(data["examples"]):
        scores = example["target_scores"]
        gold = "yes" if scores.get("Yes") == 1 else "no"
        out.append(Question(f"{prefix}-{i}", example["input"], gold, "yes_no"))
    return out


def _bigbench_choice(folder: Path, filename: str, prefix: str) -> list[Question]:
    data = json.loads((folder / filename).read_text(encoding="utf-8"))
    out = []
    for i, example in enumerate(data["examples"]):
        options = list(example["target_scores"])
        # BIG-bench lists the correct option first in some sets: shuffle with a fixed seed per
        # question, so a model that always says (A) gets no credit and runs stay comparable.
        random.Random(f"{prefix}-{i}").shuffle(options)
        gold_index = next(j for j, k in enumerate(options) if example["target_scores"][k] == 1)
        text = f"{example['input'].strip()}\n{_choices([o.rstrip('.') for o in options])}"
        out.append(Question(f"{prefix}-{i}", text, _LETTERS[gold_index], "choice"))
    return out


DATASETS: dict[str, Callable[[Path], list[Question]]] = {
    "gsm8k": _gsm8k,
    "svamp": _svamp,
    "aqua": _aqua,
    "strategyqa": lambda f: _bigbench_yes_no(f, "strategyqa.json", "strategyqa"),
    "date_understanding": lambda f: _bigbench_choice(f, "bigbench_date_understanding.json", "date"),
    "shuffled_objects": lambda f: _bigbench_choice(
        f, "bigbench_tracking_shuffled_objects.json", "objects"
    ),
}


def load_dataset(
    name: str, data_dir: str | os.PathLike[str] | None = None, *, limit: int | None = None
) -> list[Question]:
    """Load a reasoning set by name (see :data:`DATASETS`), the first ``limit`` questions."""
    if name not in DATASETS:
        raise DataNotFoundError(f"unknown data set {name!r}; choose one of {sorted(DATASETS)}")
    folder = locate(name, data_dir) / "reasoning"
    try:
        questions = DATASETS[name](folder)
    except FileNotFoundError as exc:  # removed between the check and the read
        raise DataNotFoundError(f"data set file missing: {exc.filename}") from None
    return questions[:limit] if limit else questions
