"""The pipeline on its own: a persona from a file, and everything the turn produced.

Run: python examples/pipeline_basics.py
Needs: pip install "persona-plugins[local]"
       (from a clone: pip install -e ".[local]", which `make demo` has already done)
"""

from pathlib import Path

from persona_plugins import Persona, PersonaPipeline
from persona_plugins.integrations.llama_cpp import LlamaCppChatModel

HERE = Path(__file__).parent


def main() -> None:
    persona = Persona.from_file(HERE / "personas" / "lighthouse_keeper.yaml")
    pipeline = PersonaPipeline(LlamaCppChatModel(), persona=persona, persona_template="adopt")
    result = pipeline.run_sync("What do you do when a storm is coming?")
    print(result.text)
    print()
    print("persona:", result.persona.name, f"({result.persona_source})")
    print("system prompt:", result.system_prompt.splitlines()[0])
    print("candidates:", [c.name for c in result.candidates], "chosen:", result.chosen)
    print("model calls:", result.model_calls, "tokens:", result.usage.total_tokens)


if __name__ == "__main__":
    main()
