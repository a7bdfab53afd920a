"""The embedded model never kills the caller's process on a CPU its llama.cpp build cannot run.

A crash in native code cannot be caught in Python, so these tests force one in the probe's child
process (a process that kills itself with SIGILL or dereferences NULL stands in for a wheel built
for another CPU: this machine runs its own build fine) and check that loading raises
``ModelLoadError`` with the command that fixes it. The probe's passing path, the cache and the
extra-buffer switch run the real llama.cpp build on the real model.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from persona_plugins import ModelLoadError
from persona_plugins.integrations.llama_cpp import LlamaCppChatModel, _cpu, default_model_path
from persona_plugins.integrations.llama_cpp import __main__ as llama_main
from persona_plugins.integrations.llama_cpp import server as llama_server_main

SIGILL_CHILD = "import os, signal; os.kill(os.getpid(), signal.SIGILL)"
SEGFAULT_CHILD = "import ctypes; ctypes.string_at(0)"


@pytest.fixture
def probe_cache(tmp_path, monkeypatch):
    """An empty probe cache of this test's own, with the probe switched on."""
    monkeypatch.setenv(_cpu.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(_cpu.PROBE_ENV, "1")
    return tmp_path / "cache" / "cpu-probe"


@pytest.fixture
def crashing_build(monkeypatch, tmp_path):
    """Every probe child dies from SIGILL, as a wheel built for another CPU does; each run is
    counted in a file, so the tests can tell a cached verdict from a fresh probe."""
    runs = tmp_path / "probe-runs"

    def argv(model_path, load_kwargs, extra_buffers):
        return [
            sys.executable,
            "-c",
            f"open({str(runs)!r}, 'a').write('run\\n'); {SIGILL_CHILD}",
        ]

    monkeypatch.setattr(_cpu, "probe_argv", argv)
    return runs


def runs_of(counter: Path) -> int:
    return len(counter.read_text().splitlines()) if counter.exists() else 0


# -- a build that crashes ------------------------------------------------------------------------


def test_a_build_that_crashes_raises_model_load_error_with_the_fix(probe_cache, crashing_build):
    model = LlamaCppChatModel()

    with pytest.raises(ModelLoadError) as caught:
        model.load()

    message = str(caught.value)
    assert "SIGILL (illegal instruction)" in message
    assert "crashes on this CPU" in message
    # the exact fix: a from-source rebuild with portable flags, bypassing pip's wheel cache
    assert f'CMAKE_ARGS="{_cpu.portable_cmake_args()}"' in message
    assert "-DGGML_NATIVE=OFF" in message
    assert "--no-cache-dir" in message and "--no-binary llama-cpp-python" in message
    assert f"llama-cpp-python=={_cpu.llama_cpp_version()}" in message
    assert model._llama is None  # nothing was loaded in this process


def test_the_crash_verdict_is_cached_so_the_next_load_fails_at_once(probe_cache, crashing_build):
    with pytest.raises(ModelLoadError):
        LlamaCppChatModel().load()
    with pytest.raises(ModelLoadError, match="SIGILL"):
        LlamaCppChatModel().load()

    assert runs_of(crashing_build) == 1
    assert len(list(probe_cache.glob("*.json"))) == 1


def test_a_segfault_in_the_child_is_reported_too(probe_cache, monkeypatch):
    monkeypatch.setattr(_cpu, "probe_argv", lambda *a: [sys.executable, "-c", SEGFAULT_CHILD])

    with pytest.raises(ModelLoadError, match="SIGSEGV"):
        LlamaCppChatModel().load()


def test_an_async_call_on_a_crashing_build_raises_and_the_process_lives_on(
    probe_cache, crashing_build
):
    import asyncio

    from persona_plugins import Message

    model = LlamaCppChatModel()
    with pytest.raises(ModelLoadError, match="SIGILL"):
        asyncio.run(model.complete([Message.user("Hello")]))


def test_the_check_command_exits_3_and_prints_the_fix(probe_cache, crashing_build, capsys):
    code = llama_main.main(["check"])

    err = capsys.readouterr().err
    assert code == _cpu.EXIT_CPU_FAULT == 3
    assert "SIGILL" in err and "CMAKE_ARGS=" in err


def test_check_repair_runs_the_portable_rebuild(probe_cache, crashing_build, capsys):
    code = llama_main.main(["check", "--repair", "--dry-run"])

    out = capsys.readouterr().out
    assert code == 3
    assert f'repairing: CMAKE_ARGS="{_cpu.portable_cmake_args()}"' in out
    assert "--force-reinstall --no-deps --no-cache-dir --no-binary llama-cpp-python" in out


def test_check_repair_rebuilds_then_checks_again(probe_cache, monkeypatch, tmp_path, capsys):
    """The rebuild's own pip run is replaced by a recorder (a real rebuild takes 4-25 minutes);
    after it, the probe runs again and passes."""
    state = {"rebuilt": False, "rebuild_env": None}

    def probe_argv(model_path, load_kwargs, extra_buffers):
        return [sys.executable, "-c", "print('ok')" if state["rebuilt"] else SIGILL_CHILD]

    real_run = subprocess.run

    def run(argv, *args, **kwargs):
        if argv[1:4] == ["-m", "pip", "install"]:
            state["rebuilt"] = True
            state["rebuild_env"] = kwargs.get("env")
            return subprocess.CompletedProcess(argv, 0)
        return real_run(argv, *args, **kwargs)

    monkeypatch.setattr(_cpu, "probe_argv", probe_argv)
    monkeypatch.setattr(llama_main.subprocess, "run", run)

    code = llama_main.main(["check", "--repair"])

    assert code == 0
    assert state["rebuilt"]
    assert state["rebuild_env"]["CMAKE_ARGS"] == _cpu.portable_cmake_args()
    assert "ok: llama.cpp runs" in capsys.readouterr().out


def test_the_server_wrapper_refuses_to_start_on_a_crashing_build(
    probe_cache, crashing_build, capsys
):
    code = llama_server_main.main(["--port", "1"])

    assert code == 3
    assert "SIGILL" in capsys.readouterr().err


# -- pieces --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "returncode,name",
    [
        (-int(signal.SIGILL), "SIGILL (illegal instruction)"),
        (-int(signal.SIGSEGV), "SIGSEGV (segmentation fault)"),
        (-int(signal.SIGBUS), "SIGBUS (bus error)"),
        (0xC000001D, "STATUS_ILLEGAL_INSTRUCTION"),
        (0, None),
        (1, None),
        (2, None),
    ],
)
def test_exit_statuses_are_told_apart(returncode, name):
    assert _cpu.describe_exit(returncode) == name


@pytest.mark.parametrize(
    "machine,flags",
    [
        ("x86_64", "-DGGML_AVX2=ON"),
        ("AMD64", "-DGGML_AVX2=ON"),
        ("aarch64", "-DGGML_NATIVE=OFF"),
        ("arm64", "-DGGML_NATIVE=OFF"),
    ],
)
def test_portable_flags_suit_the_architecture(machine, flags):
    args = _cpu.portable_cmake_args(machine)

    assert "-DGGML_NATIVE=OFF" in args and flags in args
    if "arm" in machine or "aarch" in machine:
        assert "AVX" not in args
    assert "AMX" not in args and "AVX512" not in args


def test_the_cache_key_follows_the_build_the_cpu_and_the_settings(monkeypatch):
    path = default_model_path()
    key = _cpu.probe_key(path, {"n_ctx": 2048}, False)

    assert key == _cpu.probe_key(path, {"n_ctx": 2048}, False)
    assert key != _cpu.probe_key(path, {"n_ctx": 2048}, True)
    assert key != _cpu.probe_key(path, {"n_ctx": 4096}, False)
    monkeypatch.setattr(_cpu, "_build_fingerprint", lambda: "llama-cpp-python=rebuilt")
    assert key != _cpu.probe_key(path, {"n_ctx": 2048}, False)
    monkeypatch.undo()
    monkeypatch.setattr(_cpu, "cpu_fingerprint", lambda: "another CPU")
    assert key != _cpu.probe_key(path, {"n_ctx": 2048}, False)


def test_a_probe_that_stalls_is_no_verdict(probe_cache, monkeypatch):
    monkeypatch.setattr(
        _cpu, "probe_argv", lambda *a: [sys.executable, "-c", "import time; time.sleep(30)"]
    )

    assert _cpu.run_probe(default_model_path(), {}, False, timeout_s=0.5) is None


def test_a_python_error_in_the_child_is_no_verdict(probe_cache, tmp_path):
    not_a_model = tmp_path / "empty.gguf"
    not_a_model.write_bytes(b"GGUF" + b"\0" * 64)

    assert _cpu.run_probe(not_a_model, {"verbose": False}, False) is None


def test_the_probe_can_be_switched_off(probe_cache, crashing_build, monkeypatch):
    monkeypatch.setenv(_cpu.PROBE_ENV, "0")

    assert _cpu.ensure_runs_here(default_model_path(), {}, False) is None
    assert runs_of(crashing_build) == 0


def test_an_unwritable_cache_only_costs_a_probe(monkeypatch, tmp_path, crashing_build):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(_cpu.CACHE_ENV, str(blocker / "cache"))
    monkeypatch.setenv(_cpu.PROBE_ENV, "1")

    with pytest.raises(ModelLoadError, match="SIGILL"):
        LlamaCppChatModel().load()


# -- the real build on this machine --------------------------------------------------------------


@pytest.mark.model
def test_the_real_build_passes_the_probe_once_and_the_verdict_is_cached(probe_cache, monkeypatch):
    calls = []
    real_probe = _cpu.run_probe
    monkeypatch.setattr(_cpu, "run_probe", lambda *a, **k: calls.append(a) or real_probe(*a, **k))

    LlamaCppChatModel().load()
    LlamaCppChatModel().load()

    assert len(calls) == 1
    (verdict,) = probe_cache.glob("*.json")
    assert '"ok": true' in verdict.read_text()


@pytest.mark.model
def test_models_load_without_extra_buffer_types_unless_asked(probe_cache):
    default = LlamaCppChatModel().load()
    opted_in = LlamaCppChatModel(extra_buffers=True).load()

    assert default.model_params.use_extra_bufts is False
    assert opted_in.model_params.use_extra_bufts is True


@pytest.mark.model
def test_the_check_command_passes_on_this_machine(probe_cache):
    done = subprocess.run(
        [sys.executable, "-m", "persona_plugins.integrations.llama_cpp", "check"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok: llama.cpp runs SmolLM2-135M-Instruct")


def test_the_module_still_prints_the_default_model_path():
    done = subprocess.run(
        [sys.executable, "-m", "persona_plugins.integrations.llama_cpp"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0
    assert Path(done.stdout.strip()) == default_model_path()
