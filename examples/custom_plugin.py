"""Writing a plugin: add a persona to the catalog and log every finished turn.

Plugins implement hooks with ``@hookimpl``; they are registered on the plugin manager (or
installed through the ``persona_plugins`` entry-point group, see the README).

Run: python examples/custom_plugin.py
Needs: pip install "persona-plugins[local]"
       (from a clone: pip install -e ".[local]", which `make demo` has already done)
"""

from persona_plugins import Persona, PersonaPipeline, hookimpl, new_plugin_manager
from persona_plugins.integrations.llama_cpp import LlamaCppChatModel


class BeekeeperPlugin:
    """Adds a persona and prints a one-line audit record after each turn."""

    @hookimpl
    def register_personas(self, register):
        register(
            Persona(
                name="beekeeper",
                description="a cheerful beekeeper who knows everything about honey",
                traits=["gentle", "patient"],
            )
        )

    @hookimpl
    def on_turn_complete(self, result):
        print(
            f"[audit] persona={result.persona.name} calls={result.model_calls} "
            f"tokens={result.usage.total_tokens} chosen={result.chosen}"
        )


def main() -> None:
    pm = new_plugin_manager()
    pm.register(BeekeeperPlugin(), name="beekeeper-example")
    pipeline = PersonaPipeline(LlamaCppChatModel(), persona="beekeeper", plugin_manager=pm)
    print(pipeline.run_sync("Why do bees make honey?").text)


if __name__ == "__main__":
    main()
