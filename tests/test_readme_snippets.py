"""Every code block in the README works as written, so the README cannot drift from the code.

Each ```python block is a complete script: it is run in a subprocess of its own, with a temporary
folder as working directory and entry-point plugins off, on the embedded model (a block that reads
``OPENAI_BASE_URL`` talks to a real ``llama_cpp.server``; one that reads
``OTEL_EXPORTER_OTLP_ENDPOINT`` exports to a local OTLP/HTTP receiver). An HTML comment on the line
right before a fence gives a block options, invisible on the rendered page:

- ``<!-- snippet: fragment -->``: not a script (a hook implementation shown on its own); it must
  compile, and the hooks it defines must register on a plugin manager (names and arguments checked);
- ``<!-- snippet: file=NAME -->``: a non-Python block written to ``NAME`` in the working directory
  of every script, for the scripts that read it (``pipeline.toml``);
- ``<!-- snippet: expect=TEXT -->``: the script's output must contain ``TEXT``.

Without ruff or a model, the quick tests still check that each script defines every name it uses.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import sys
import threading
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

README = Path(__file__).resolve().parents[1] / "README.md"

_FENCE = re.compile(r"^```([\w-]*)\s*$")
_MARKER = re.compile(r"^<!--\s*snippet:(.*?)-->\s*$")


@dataclass(frozen=True)
class Block:
    lang: str
    code: str
    line: int  # line number of the opening fence
    section: str
    options: dict[str, tuple[str, ...]] = field(default_factory=dict)
    index: int = 1  # among the blocks of the same language in its section

    @property
    def id(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.section.lower()).strip("-")[:40]
        return f"{slug}-{self.index}"

    @property
    def fragment(self) -> bool:
        return "fragment" in self.options


def read_blocks(text: str) -> list[Block]:
    """Every fenced block of a markdown text, with its section and ``snippet:`` options."""
    lines = text.splitlines()
    blocks: list[Block] = []
    section = ""
    options: dict[str, list[str]] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        marker = _MARKER.match(line)
        fence = _FENCE.match(line)
        if marker:
            for item in marker.group(1).split():
                key, _, value = item.partition("=")
                options.setdefault(key, []).append(value)
        elif fence:
            end = lines.index("```", i + 1)
            lang = fence.group(1)
            index = 1 + sum(1 for b in blocks if b.section == section and b.lang == lang)
            blocks.append(
                Block(
                    lang=lang,
                    code="\n".join(lines[i + 1 : end]) + "\n",
                    line=i + 1,
                    section=section,
                    options={k: tuple(v) for k, v in options.items()},
                    index=index,
                )
            )
            options = {}
            i = end
        else:
            if line.startswith("#"):
                section = line.lstrip("#").strip()
            options = {}  # a marker applies only to the fence right after it
        i += 1
    return blocks


BLOCKS = read_blocks(README.read_text(encoding="utf-8"))
PYTHON = [b for b in BLOCKS if b.lang == "python"]
SCRIPTS = [b for b in PYTHON if not b.fragment]
FRAGMENTS = [b for b in PYTHON if b.fragment]
FILES = {b.options["file"][0]: b.code for b in BLOCKS if "file" in b.options}


def _script_params() -> list[object]:
    params = []
    for block in SCRIPTS:
        marks = [pytest.mark.model]
        if "OPENAI_BASE_URL" in block.code:
            marks.append(pytest.mark.server)
        params.append(pytest.param(block, id=block.id, marks=marks))
    return params


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PERSONA_PLUGINS_DISABLE_AUTOLOAD="1",
        AUTOGEN_DISABLE_RUNTIME_TRACING="true",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


# -- the README's blocks as a whole --------------------------------------------------------------


def test_the_readme_has_runnable_blocks_for_every_framework_section():
    sections = {b.section for b in SCRIPTS}
    for name in (
        "AutoGen in ten lines",
        "Semantic Kernel",
        "The pipeline without a framework",
        "Jekyll & Hyde ensembling",
        "Multi-agent response refinement",
        "Bias guardrails",
        "Configuration reference",
        "Tracing and metrics",
        "Writing a plugin",
    ):
        assert name in sections, f"no runnable python block in the README section {name!r}"
    assert FILES.get("pipeline.toml"), "the pipeline.toml block is not marked as a file"


def test_marker_options_are_known():
    for block in BLOCKS:
        assert set(block.options) <= {"fragment", "file", "expect"}, (block.id, block.options)
        if "file" in block.options:
            assert block.lang != "python", f"{block.id}: a python block cannot be a file"


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "toml"], ids=lambda b: b.id)
def test_toml_blocks_parse(block):
    tomllib.loads(block.code)


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "yaml"], ids=lambda b: b.id)
def test_yaml_blocks_parse(block):
    assert yaml.safe_load(block.code)


def test_the_pipeline_toml_block_is_a_valid_config(tmp_path):
    from persona_plugins import PipelineConfig

    (tmp_path / "pipeline.toml").write_text(FILES["pipeline.toml"], encoding="utf-8")
    config = PipelineConfig.from_toml(tmp_path / "pipeline.toml")
    assert config.persona == "historian"
    assert config.model_settings["max_tokens"] <= 96  # kept small: the block runs in the tests


# -- scripts: complete, then run -----------------------------------------------------------------


@pytest.mark.parametrize("block", SCRIPTS, ids=lambda b: b.id)
def test_script_blocks_compile_and_have_no_top_level_await(block):
    compile(block.code, f"README.md:{block.line}", "exec")


@pytest.mark.parametrize("block", SCRIPTS, ids=lambda b: b.id)
def test_script_blocks_define_every_name_they_use(block):
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed")
    proc = subprocess.run(
        [
            ruff,
            "check",
            "--isolated",
            "--select=F821,F822,F823",
            "--output-format=concise",
            f"--stdin-filename=README_L{block.line}.py",
            "-",
        ],
        input=block.code,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, f"README.md line {block.line}:\n{proc.stdout}{proc.stderr}"


class _OtlpReceiver(ThreadingHTTPServer):
    """An OTLP/HTTP endpoint on loopback that keeps the span names it receives, standing in for a
    collector (the real Phoenix server is exercised in tests/integrations/test_phoenix.py)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _OtlpHandler)
        self.span_names: list[str] = []
        self.paths: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _OtlpHandler(BaseHTTPRequestHandler):
    server: _OtlpReceiver

    def do_POST(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.server.paths.append(self.path)
        if self.path == "/v1/traces":
            request = ExportTraceServiceRequest.FromString(body)
            for resource in request.resource_spans:
                for scope in resource.scope_spans:
                    self.server.span_names.extend(span.name for span in scope.spans)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def otlp_receiver() -> Iterator[_OtlpReceiver]:
    receiver = _OtlpReceiver()
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.shutdown()
        receiver.server_close()


@pytest.mark.parametrize("block", _script_params())
def test_script_block_runs(block, tmp_path, request):
    env: dict[str, str] = {}
    receiver = None
    if "OPENAI_BASE_URL" in block.code:
        env["OPENAI_BASE_URL"] = request.getfixturevalue("llama_server")
    if "OTEL_EXPORTER_OTLP_ENDPOINT" in block.code:
        receiver = request.getfixturevalue("otlp_receiver")
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.url
    for name, text in FILES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    script = tmp_path / "snippet.py"
    script.write_text(block.code, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=420,
    )
    assert proc.returncode == 0, f"README.md line {block.line} failed:\n{proc.stderr[-4000:]}"
    assert proc.stdout.strip(), f"README.md line {block.line} printed nothing"
    for text in block.options.get("expect", ()):
        assert text in proc.stdout, f"README.md line {block.line}: {text!r} not in\n{proc.stdout}"
    if receiver is not None:
        assert "/v1/metrics" in receiver.paths
        assert "invoke_workflow persona_pipeline" in receiver.span_names, receiver.span_names


# -- framework sections without their extra ----------------------------------------------------

_HIDE = "import runpy, sys\nfor name in {names!r}:\n    sys.modules[name] = None\n"


@pytest.mark.parametrize(
    "block",
    [b for b in SCRIPTS if "semantic_kernel" in b.code],
    ids=lambda b: b.id,
)
def test_semantic_kernel_blocks_without_the_extra_say_what_to_install(block, tmp_path):
    script = tmp_path / "snippet.py"
    script.write_text(block.code, encoding="utf-8")
    prelude = _HIDE.format(names=["semantic_kernel"])
    proc = subprocess.run(
        [sys.executable, "-c", f"{prelude}runpy.run_path({str(script)!r}, run_name='__main__')"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode != 0
    assert last.startswith("persona_plugins.errors.MissingExtraError"), proc.stderr[-2000:]
    assert "'semantic-kernel' extra" in last
    assert 'pip install "persona-plugins[semantic-kernel]"' in last


# -- fragments -----------------------------------------------------------------------------------


@pytest.mark.parametrize("block", FRAGMENTS, ids=lambda b: b.id)
def test_fragments_compile_and_their_hooks_register(block):
    import persona_plugins
    from persona_plugins import hookspecs, new_plugin_manager

    code = compile(block.code, f"README.md:{block.line}", "exec")
    namespace = {name: getattr(persona_plugins, name) for name in persona_plugins.__all__}
    exec(code, namespace)
    marker = f"{hookspecs.PROJECT_NAME}_impl"
    plugin = types.ModuleType(f"readme_fragment_L{block.line}")
    hooks = {k: v for k, v in namespace.items() if callable(v) and hasattr(v, marker)}
    assert hooks, f"README.md line {block.line}: a fragment with no @hookimpl function"
    for name, function in hooks.items():
        setattr(plugin, name, function)
    pm = new_plugin_manager(load_entrypoints=False)
    pm.register(plugin)  # checks each implementation's arguments against its specification
    pm.check_pending()  # and that every hook it names exists
