"""The audit as batch files (``persona-plugins audit --write-batch FILE`` / ``--read-batch
RESULTS``): every persona x question request written as OpenAI batch JSON lines, the format that
vLLM's ``run-batch`` and hosted batch APIs accept, and the batch engine's result file scored into
the same ``audit.md`` / ``audit.json`` / ``audit.png``, so a large audit runs on a batch engine
without this process staying up.

Both directions run the audit itself (:func:`~persona_plugins.evaluation.audit.run_audit`), so the
requests are exactly those a live audit sends and the scoring is exactly a live audit's:

- writing runs it on a model that records each request and answers nothing useful (the records
  of that run are thrown away), one request per answer;
- reading runs it on a model that answers each request with the batch engine's reply to it,
  found by ``custom_id``: ``<kind>|<persona>|<question id>#<digest of the request>``. A request
  the result file has no answer for (the audit's options changed, or the engine failed it) is
  named before anything is scored.

A batch line::

    {"custom_id": "qa|woman|q1#3f2a...", "method": "POST", "url": "/v1/chat/completions",
     "body": {"model": "...", "messages": [...], "max_tokens": 256}}

A result line (only ``custom_id``, ``error``, ``response.status_code`` and
``response.body.choices[0].message.content`` are read; a ``response`` that is the completion
itself, with no ``body``, is read too)::

    {"custom_id": "qa|woman|q1#3f2a...", "response": {"status_code": 200, "body": {...}},
     "error": null}
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from persona_plugins.config import EXTRA_SETTINGS
from persona_plugins.errors import ConfigError, ModelCallError
from persona_plugins.evaluation.audit import RECORDS, _key, read_text_file, run_audit
from persona_plugins.evaluation.progress import Progress
from persona_plugins.model import Completion, Message, Usage

__all__ = ["BATCH_URL", "read_audit_batch", "write_audit_batch"]

#: The ``url`` of every batch request.
BATCH_URL = "/v1/chat/completions"


def _request_body(
    model_name: str, messages: Sequence[Message], settings: dict[str, Any]
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model_name,
        "messages": [{"role": m.role, "content": m.content} for m in messages],
    }
    body.update({k: v for k, v in settings.items() if k != EXTRA_SETTINGS and v is not None})
    body.update(settings.get(EXTRA_SETTINGS) or {})
    return body


def _digest(messages: Sequence[Message], settings: dict[str, Any]) -> str:
    """What identifies a request whatever model it is sent to."""
    body = _request_body("", messages, settings)
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class _RecordingModel:
    """Records every request; answers with a placeholder (the records are thrown away)."""

    model_name = "batch-writer"
    provider_name = "batch"

    def __init__(self, generation: dict[str, Any]):
        self.generation = generation
        self.requests: list[tuple[list[Message], dict[str, Any]]] = []

    async def complete(self, messages: Sequence[Message], **settings: Any) -> Completion:
        self.requests.append((list(messages), {**self.generation, **settings}))
        return Completion(text="(recorded for a batch)", usage=Usage())


class _ReplayModel:
    """Answers each request with the batch engine's reply to it."""

    model_name = "batch-results"
    provider_name = "batch"

    def __init__(self, generation: dict[str, Any], replies: dict[str, str]):
        self.generation = generation
        self.replies = replies

    async def complete(self, messages: Sequence[Message], **settings: Any) -> Completion:
        digest = _digest(messages, {**self.generation, **settings})
        if digest not in self.replies:  # found missing before scoring; kept as a guard
            raise ModelCallError(f"no batch result for request {digest}", messages=messages)
        return Completion(text=self.replies[digest].strip(), usage=Usage())


async def _requests(
    questions: Sequence[Any],
    personas: Sequence[Any],
    generation: dict[str, Any],
    audit_options: dict[str, Any],
) -> list[tuple[str, list[Message], dict[str, Any]]]:
    """Every request of the audit, with the answer it is for (``kind|persona|id``), in order."""
    recorder = _RecordingModel(generation)
    with tempfile.TemporaryDirectory() as folder:
        quiet = Progress(io.StringIO(), ticker=False)
        await run_audit(
            questions, recorder, personas, out_dir=Path(folder), progress=quiet, **audit_options
        )
        lines = (Path(folder) / RECORDS).read_text(encoding="utf-8").splitlines()
    keys = [_key(record) for record in map(json.loads, lines)]
    if len(keys) != len(recorder.requests):
        raise ConfigError(
            f"the audit made {len(recorder.requests)} model calls for {len(keys)} answers; batch "
            "files need exactly one call per answer (no ensemble, refinement or model checks)"
        )
    return [(key, m, s) for key, (m, s) in zip(keys, recorder.requests, strict=True)]


async def write_audit_batch(
    questions: Sequence[Any],
    personas: Sequence[Any],
    *,
    path: Path,
    model_name: str = "default",
    generation: dict[str, Any] | None = None,
    **audit_options: Any,
) -> int:
    """Write every request of the audit to ``path`` as OpenAI batch JSON lines; return how many.

    :param model_name: the ``model`` of every request body.
    :param generation: settings every request carries (``max_tokens`` ...), as a served model's
        defaults would add them.
    :param audit_options: as for :func:`~persona_plugins.evaluation.audit.run_audit`
        (``crows``, ``settings``, ``plugin_manager`` ...).
    """
    requests = await _requests(questions, personas, dict(generation or {}), audit_options)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as sink:
        for key, messages, settings in requests:
            line = {
                "custom_id": f"{key}#{_digest(messages, settings)}",
                "method": "POST",
                "url": BATCH_URL,
                "body": _request_body(model_name, messages, settings),
            }
            sink.write(json.dumps(line, ensure_ascii=False) + "\n")
    return len(requests)


def _read_results(path: Path) -> tuple[dict[str, str], list[str]]:
    """Replies by request digest, and the problems met (line by line)."""
    text = read_text_file(path, "batch result file")
    replies: dict[str, str] = {}
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            custom_id = row["custom_id"]
            if row.get("error"):
                problems.append(
                    f"line {number} ({custom_id}): the engine failed it: {row['error']}"
                )
                continue
            response = row["response"]
            status = response.get("status_code", 200)
            if status != 200:
                problems.append(f"line {number} ({custom_id}): HTTP {status}")
                continue
            body = response.get("body", response)  # a bare completion too
            content = body["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError) as exc:
            problems.append(f"line {number}: not a batch result ({type(exc).__name__}: {exc})")
            continue
        replies[str(custom_id).rsplit("#", 1)[-1]] = content if isinstance(content, str) else ""
    return replies, problems


async def read_audit_batch(
    questions: Sequence[Any],
    personas: Sequence[Any],
    *,
    results: Path,
    out_dir: Path,
    generation: dict[str, Any] | None = None,
    progress: Progress | None = None,
    **audit_options: Any,
) -> dict[str, Any]:
    """Score the batch engine's result file into ``audit.jsonl``, ``audit.md``, ``audit.json``
    and ``audit.png`` in ``out_dir``, as a live audit with the same options would; return the
    summary.

    Raises:
        ConfigError: a request of this audit has no usable reply in ``results`` (the message
            says how many, names the first few, and lists the result lines that could not be
            read or that the engine failed).
    """
    generation = dict(generation or {})
    replies, problems = _read_results(results)
    wanted = await _requests(questions, personas, generation, audit_options)
    missing = [key for key, m, s in wanted if _digest(m, s) not in replies]
    if missing:
        shown = "; ".join(missing[:3]) + ("; ..." if len(missing) > 3 else "")
        detail = ("; " + "; ".join(problems[:3])) if problems else ""
        raise ConfigError(
            f"{results}: {len(missing)} of {len(wanted)} requests have no usable result "
            f"({shown}); were the audit's options the same as for --write-batch?{detail}"
        )
    return await run_audit(
        questions,
        _ReplayModel(generation, replies),
        personas,
        out_dir=out_dir,
        progress=progress,
        **audit_options,
    )
