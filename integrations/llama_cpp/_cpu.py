"""Make sure the installed llama.cpp build can run on this CPU before the first decode.

llama-cpp-python is usually compiled from source on the machine that installs it, with llama.cpp's
native CPU flags. Two things then kill the process with a signal that Python cannot catch:

- a CPU that *advertises* instructions it does not run: many cloud VMs report Intel AMX
  (``amx_tile``) without enabling it, so llama.cpp's AMX matrix path faults on its first tile
  instruction. That path is only taken for weights placed in llama.cpp's "extra" buffer types, so
  :class:`~persona_plugins.integrations.llama_cpp.LlamaCppChatModel` loads models with them off
  (``use_extra_bufts = False``) unless asked otherwise;
- a wheel built natively on one CPU and run on another (a shared pip cache, a copied venv, a Docker
  layer): any instruction the other CPU lacks raises ``SIGILL``.

The first case is avoided; the second cannot be caught in Python, so the first load in a process
runs a *probe*: a child process loads the same model with the same settings and writes two tokens.
If the child dies from a signal, loading raises :class:`~persona_plugins.ModelLoadError` naming the
signal and the exact command that rebuilds llama-cpp-python for a portable CPU baseline, instead
of letting the user's process die. The verdict is cached (per llama.cpp build, CPU, model file and
settings) under ``$PERSONA_PLUGINS_CACHE_DIR`` (default ``$XDG_CACHE_HOME/persona-plugins`` or
``~/.cache/persona-plugins``), so the probe costs about a second once per machine and build.
``PERSONA_PLUGINS_CPU_PROBE=0`` turns it off.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from persona_plugins.errors import ModelLoadError

_log = logging.getLogger(__name__)
_PATCH_LOCK = threading.RLock()

PROBE_ENV = "PERSONA_PLUGINS_CPU_PROBE"
CACHE_ENV = "PERSONA_PLUGINS_CACHE_DIR"
#: How long the probe may take (loading 98 MB and writing two tokens takes about a second; a
#: loaded 2-core machine needs far longer). A probe that times out is not a verdict: the model
#: loads in-process as before, and the next process probes again.
PROBE_TIMEOUT_S = 300.0
#: Exit status of ``python -m persona_plugins.integrations.llama_cpp check`` when the build crashes.
EXIT_CPU_FAULT = 3

#: CMake flags of a portable llama.cpp build. On x86-64: AVX2-class CPUs (every x86-64 server and
#: desktop CPU of the last ten years), without AVX-512 or AMX. Elsewhere (ARM): the compiler's
#: baseline for the architecture.
PORTABLE_CMAKE_ARGS_X86 = (
    "-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
)
PORTABLE_CMAKE_ARGS_OTHER = "-DGGML_NATIVE=OFF"

_FAULT_SIGNALS = {
    int(signal.SIGILL): "SIGILL (illegal instruction)",
    int(signal.SIGSEGV): "SIGSEGV (segmentation fault)",
    int(signal.SIGFPE): "SIGFPE (arithmetic fault)",
    int(signal.SIGABRT): "SIGABRT (abort)",
}
if hasattr(signal, "SIGBUS"):
    _FAULT_SIGNALS[int(signal.SIGBUS)] = "SIGBUS (bus error)"
# Windows reports a crash as an NTSTATUS exit code instead of a signal.
_WINDOWS_FAULTS = {
    0xC000001D: "STATUS_ILLEGAL_INSTRUCTION",
    0xC0000005: "STATUS_ACCESS_VIOLATION",
    0xC0000096: "STATUS_PRIVILEGED_INSTRUCTION",
}


@dataclass(frozen=True)
class ProbeResult:
    """What the probe found: ``ok``, or the crash it saw (``signal_name``), and its output."""

    ok: bool
    signal_name: str | None = None
    detail: str = ""
    cached: bool = False


# -- extra buffer types --------------------------------------------------------------------------


def _without_extra_buffers(original: Any) -> Any:
    def default_params() -> Any:
        params = original()
        if hasattr(params, "use_extra_bufts"):  # older builds have no such field
            params.use_extra_bufts = False
        return params

    default_params.__wrapped__ = original  # type: ignore[attr-defined]
    return default_params


@contextlib.contextmanager
def extra_buffer_types(enabled: bool) -> Iterator[None]:
    """Within this block, ``llama_cpp.Llama(...)`` loads models with extra buffer types on or off.

    llama-cpp-python builds the model parameters from ``llama_model_default_params()`` inside
    ``Llama.__init__`` and offers no argument for ``use_extra_bufts``, so the default-parameter
    function is wrapped for the duration of the block.
    """
    if enabled:
        yield
        return
    import llama_cpp.llama_cpp as lib

    with _PATCH_LOCK:  # two models loading at once must not restore each other's patch
        original = lib.llama_model_default_params
        lib.llama_model_default_params = _without_extra_buffers(original)
        try:
            yield
        finally:
            lib.llama_model_default_params = original


def turn_off_extra_buffer_types() -> None:
    """For a whole process (the server): every ``Llama`` loads without extra buffer types."""
    import llama_cpp.llama_cpp as lib

    with _PATCH_LOCK:
        if not hasattr(lib.llama_model_default_params, "__wrapped__"):
            lib.llama_model_default_params = _without_extra_buffers(lib.llama_model_default_params)


# -- the fix -------------------------------------------------------------------------------------


def portable_cmake_args(machine: str | None = None) -> str:
    """The ``CMAKE_ARGS`` of a llama.cpp build that runs on any CPU of this architecture."""
    arch = (machine or platform.machine()).lower()
    return (
        PORTABLE_CMAKE_ARGS_X86
        if arch in {"x86_64", "amd64", "i386", "i686"}
        else (PORTABLE_CMAKE_ARGS_OTHER)
    )


def llama_cpp_version() -> str | None:
    try:
        return importlib.metadata.version("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        return None


def rebuild_argv(python: str | None = None) -> list[str]:
    """The pip command that rebuilds llama-cpp-python from source (run with ``CMAKE_ARGS`` set).

    ``--no-cache-dir`` matters: pip caches a built wheel by version, not by ``CMAKE_ARGS``, so
    without it pip would reinstall the same native wheel it built before.
    """
    version = llama_cpp_version()
    requirement = f"llama-cpp-python=={version}" if version else "llama-cpp-python"
    return [
        python or sys.executable,
        "-m",
        "pip",
        "install",
        "--force-reinstall",
        "--no-deps",
        "--no-cache-dir",
        "--no-binary",
        "llama-cpp-python",
        requirement,
    ]


def rebuild_command(python: str | None = None) -> str:
    """The one shell line that fixes a llama.cpp build this CPU cannot run."""
    argv = rebuild_argv(python)
    return f'CMAKE_ARGS="{portable_cmake_args()}" ' + " ".join(shlex.quote(a) for a in argv)


def describe_exit(returncode: int) -> str | None:
    """The name of the crash behind a child's exit status, or None for a normal exit."""
    if returncode < 0:
        number = -returncode
        if number in _FAULT_SIGNALS:
            return _FAULT_SIGNALS[number]
        with contextlib.suppress(ValueError):
            return signal.Signals(number).name
        return f"signal {number}"
    if returncode & 0xFFFFFFFF in _WINDOWS_FAULTS:
        return _WINDOWS_FAULTS[returncode & 0xFFFFFFFF]
    return None


def fault_message(result: ProbeResult, model_path: Path) -> str:
    """The :class:`ModelLoadError` text for a probe that crashed."""
    version = llama_cpp_version() or "unknown version"
    return (
        f"the installed llama.cpp build (llama-cpp-python {version}) crashes on this CPU "
        f"({cpu_name()}): a test load of {model_path.name} in a child process died with "
        f"{result.signal_name}. The build uses CPU instructions this machine does not run "
        "(usually a wheel compiled natively on another machine, or a CPU that advertises "
        "instructions it does not enable). Rebuild it for a portable CPU baseline (takes 4 to 25 "
        f"minutes on 2 cores):\n    {rebuild_command()}\n"
        "then run again. To check a build without loading it here: "
        f"{shlex.quote(sys.executable)} -m persona_plugins.integrations.llama_cpp check"
    )


# -- CPU and build identity ----------------------------------------------------------------------


def cpu_name() -> str:
    """A human-readable CPU name (``model name`` from /proc/cpuinfo where there is one)."""
    for line in _cpuinfo().splitlines():
        key, _, value = line.partition(":")
        if key.strip() in {"model name", "Model", "Hardware"} and value.strip():
            return value.strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def cpu_fingerprint() -> str:
    """What identifies this CPU for the cache: its name and the feature flags it advertises."""
    lines = {
        line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip()
        for line in _cpuinfo().splitlines()
        if ":" in line
    }
    keep = ("model name", "flags", "Features", "CPU implementer", "CPU part", "Hardware")
    parts = [f"{key}={lines[key]}" for key in keep if key in lines]
    parts.append(f"machine={platform.machine()}")
    return "\n".join(parts)


def _build_fingerprint() -> str:
    """The installed llama.cpp build: the version and every shared library's size and mtime."""
    parts = [f"llama-cpp-python={llama_cpp_version()}"]
    spec = importlib.util.find_spec("llama_cpp")
    if spec is not None and spec.submodule_search_locations:
        root = Path(next(iter(spec.submodule_search_locations)))
        for lib in sorted(root.glob("**/*")):
            if lib.suffix in {".so", ".dylib", ".dll"} or ".so." in lib.name:
                with contextlib.suppress(OSError):
                    stat = lib.stat()
                    parts.append(f"{lib.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}")
    return "\n".join(parts)


def cache_dir() -> Path:
    """Where persona-plugins caches things that hold across runs."""
    env = os.environ.get(CACHE_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "persona-plugins"


def probe_key(model_path: Path, load_kwargs: dict[str, Any], extra_buffers: bool) -> str:
    try:
        stat = model_path.stat()
        model = f"{model_path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    except OSError:
        model = str(model_path)
    material = "\n".join(
        [
            cpu_fingerprint(),
            _build_fingerprint(),
            model,
            json.dumps(load_kwargs, sort_keys=True, default=str),
            f"extra_buffers={extra_buffers}",
        ]
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


# -- the probe -----------------------------------------------------------------------------------


def probe_argv(model_path: Path, load_kwargs: dict[str, Any], extra_buffers: bool) -> list[str]:
    """The child process that loads the model and writes two tokens."""
    settings = json.dumps({"load": load_kwargs, "extra_buffers": extra_buffers})
    return [
        sys.executable,
        "-m",
        "persona_plugins.integrations.llama_cpp",
        "_probe-child",
        str(model_path),
        settings,
    ]


def run_probe(
    model_path: Path,
    load_kwargs: dict[str, Any],
    extra_buffers: bool,
    *,
    timeout_s: float | None = None,
) -> ProbeResult | None:
    """Load the model in a child process; None when the probe could not decide (no verdict)."""
    timeout_s = PROBE_TIMEOUT_S if timeout_s is None else timeout_s
    argv = probe_argv(model_path, load_kwargs, extra_buffers)
    env = {**os.environ, PROBE_ENV: "0"}  # the child must not probe in turn
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=env,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        _log.warning("the llama.cpp CPU probe took over %.0f s; loading without it", timeout_s)
        return None
    except OSError as exc:
        _log.warning("the llama.cpp CPU probe could not start (%s); loading without it", exc)
        return None
    output = ((done.stdout or "") + (done.stderr or "")).strip()[-2000:]
    crash = describe_exit(done.returncode)
    if crash is not None:
        return ProbeResult(ok=False, signal_name=crash, detail=output)
    if done.returncode == 0:
        return ProbeResult(ok=True, detail=output)
    # A Python-level failure (a bad file, say): the in-process load reports it properly.
    _log.debug("llama.cpp CPU probe exited with %s: %s", done.returncode, output)
    return None


def _read_cached(path: Path) -> ProbeResult | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ProbeResult(
            ok=bool(data["ok"]),
            signal_name=data.get("signal_name"),
            detail=str(data.get("detail", "")),
            cached=True,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_cached(path: Path, result: ProbeResult) -> None:
    with contextlib.suppress(OSError):  # a read-only home only costs a probe per process
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".probe-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(
                {
                    "ok": result.ok,
                    "signal_name": result.signal_name,
                    "detail": result.detail,
                    "cpu": cpu_name(),
                    "llama_cpp_python": llama_cpp_version(),
                },
                handle,
            )
        os.replace(tmp, path)


def probe_enabled() -> bool:
    return os.environ.get(PROBE_ENV, "1").strip().lower() not in {"0", "false", "no", "off"}


def ensure_runs_here(
    model_path: Path, load_kwargs: dict[str, Any], extra_buffers: bool
) -> ProbeResult | None:
    """Raise :class:`ModelLoadError` if loading this model with this build would crash the process.

    Uses the cached verdict when there is one; otherwise runs the probe and caches a verdict.
    """
    if not probe_enabled():
        return None
    path = cache_dir() / "cpu-probe" / f"{probe_key(model_path, load_kwargs, extra_buffers)}.json"
    result = _read_cached(path)
    if result is None:
        result = run_probe(model_path, load_kwargs, extra_buffers)
        if result is None:
            return None
        _write_cached(path, result)
    if not result.ok:
        raise ModelLoadError(fault_message(result, model_path))
    return result


def probe_child(model_path: str, settings_json: str) -> int:
    """The child's side: load, write two tokens, exit 0 (a crash ends it with a signal)."""
    settings = json.loads(settings_json)
    from llama_cpp import Llama

    with extra_buffer_types(bool(settings.get("extra_buffers", False))):
        llama = Llama(model_path=model_path, **settings.get("load", {}))
    # A prompt of some length, so that prompt processing runs the batched matrix kernels (the
    # ones that faulted on AMX), then two generated tokens for the single-token path.
    prompt = " ".join(["The lighthouse keeper counts the ships that pass the rocks at night."] * 8)
    llama.create_completion(prompt, max_tokens=2, temperature=0.0)
    print("ok")
    return 0
