"""Take ``docs/phoenix-trace.png``: one Jekyll & Hyde turn on the embedded model, traced over OTLP
into a real Arize Phoenix, shown in Phoenix's trace view and captured with headless Chromium.

Needs ``make .venv-phoenix/.installed`` and Chromium (Debian: ``apt-get install chromium``). Run
from the repository root::

    .venv/bin/python -m tests.integrations.phoenix_screenshot [OUTPUT.png]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from persona_plugins import PersonaPipeline, semconv
from persona_plugins.integrations.llama_cpp import LlamaCppChatModel
from persona_plugins.integrations.opentelemetry import configure_tracing
from tests.integrations.phoenix_server import (
    REPO_ROOT,
    project_id,
    running_phoenix,
    wait_for_spans,
)

DEFAULT_OUTPUT = REPO_ROOT / "docs" / "phoenix-trace.png"
PERSONA = "historian"
QUESTION = "What is the capital of France?"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1400,900",
    # The UI is a JavaScript app: let it fetch the trace and render before the capture.
    "--virtual-time-budget=15000",
]


def trace_one_turn(base: str, project: str) -> tuple[str, str]:
    """Send one traced turn to Phoenix; return its trace id and the Phoenix id of the first
    persona-candidate model call (the span shown selected)."""
    provider = configure_tracing(
        "otlp",
        endpoint=f"{base}/v1/traces",
        resource_attributes={"openinference.project.name": project},
        batch=False,
    )
    local = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(local))
    try:
        pipeline = PersonaPipeline(
            LlamaCppChatModel(),
            persona=PERSONA,
            ensemble="jekyll_hyde",
            model_settings={"max_tokens": 48},
            tracer_provider=provider,
        )
        result = pipeline.run_sync(QUESTION)
        provider.force_flush()
    finally:
        provider.shutdown()
    print(f"answer ({result.model_calls} model calls): {result.text!r}")
    sent = {format(s.context.span_id, "016x") for s in local.get_finished_spans()}
    spans = wait_for_spans(
        base, project, lambda got: {s["context"]["span_id"] for s in got} >= sent
    )
    [turn] = [s for s in spans if s["name"] == semconv.SPAN_TURN]
    chosen = [
        s
        for s in spans
        if s["attributes"].get(semconv.GEN_AI_AGENT_NAME) == "persona_candidate"
        and s["name"].startswith("chat ")
    ]
    return turn["context"]["trace_id"], (chosen or [turn])[0]["id"]


def screenshot(url: str, output: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("Chromium not found; install it (Debian: apt-get install chromium)")
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        command = [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--screenshot={output}",
            url,
        ]
        print(" ".join(command))
        subprocess.run(command, check=True, timeout=120, capture_output=True)


def main() -> None:
    output = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else DEFAULT_OUTPUT
    project = f"persona-plugins-{uuid.uuid4().hex[:6]}"
    with (
        tempfile.TemporaryDirectory(prefix="phoenix-") as working_dir,
        running_phoenix(Path(working_dir)) as base,
    ):
        trace_id, span_id = trace_one_turn(base, project)
        url = (
            f"{base}/projects/{project_id(base, project)}/traces/{trace_id}"
            f"?selectedSpanNodeId={span_id}"
        )
        screenshot(url, output)
    print(f"wrote {output} ({output.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
