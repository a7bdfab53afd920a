"""A Semantic Kernel kernel with PersonaPlugin, on the embedded model.

The plugin's prompt-rendering filter writes the persona into every prompt function as a system
message, and its kernel functions answer as the persona and check a text for bias.

Run: python examples/sk_kernel_plugin.py
Needs: pip install "persona-plugins[semantic-kernel,local]"
       (from a clone: pip install -e ".[semantic-kernel,local]"; `make demo` does not install
       Semantic Kernel: add it with .venv/bin/pip install -e ".[semantic-kernel]")
"""

import asyncio

from semantic_kernel import Kernel
from semantic_kernel.contents import ChatHistory
from semantic_kernel.functions import KernelArguments

from persona_plugins.adapters.semantic_kernel import PersonaPlugin, embedded_chat_completion


async def main() -> None:
    kernel = Kernel()
    kernel.add_service(embedded_chat_completion(generation={"max_tokens": 96}))
    plugin = PersonaPlugin(persona="pirate_captain")
    kernel.add_plugin(plugin, "persona")

    # A prompt function: the persona arrives as a system message ahead of the template's text.
    describe = kernel.add_function(
        plugin_name="writer",
        function_name="describe",
        prompt="Describe {{$place}} in two sentences.",
    )
    result = await kernel.invoke(describe, KernelArguments(place="a harbour at dawn"))
    print(result, "\n")
    sent = ChatHistory.from_rendered_prompt(result.rendered_prompt).messages
    print("the model was sent:", [m.role.value for m in sent])

    # The plugin's own kernel functions.
    answer = await kernel.invoke(
        plugin_name="persona", function_name="answer", question="Where is the treasure?"
    )
    turn = plugin.last_result
    print(f"\n{answer}\n\npersona: {turn.persona.name}, model calls: {turn.model_calls}")
    report = await kernel.invoke(
        plugin_name="persona", function_name="check_bias", text=str(answer)
    )
    print(f"bias check: {report}")


if __name__ == "__main__":
    asyncio.run(main())
