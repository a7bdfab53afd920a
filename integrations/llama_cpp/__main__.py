"""``python -m persona_plugins.integrations.llama_cpp`` prints the path of the default GGUF file."""

from persona_plugins.integrations.llama_cpp import default_model_path

print(default_model_path())
