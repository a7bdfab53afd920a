"""A Semantic Kernel ChatCompletionAgent that answers as a persona, on the embedded model.

ChatCompletionAgent calls its chat service directly (kernel filters never see its prompts), so
the persona comes from PersonaChatCompletion, a chat service around any other.

Run: python examples/sk_agent.py
Needs: pip install "persona-plugins[semantic-kernel,local]"
       (from a clone: pip install -e ".[semantic-kernel,local]"; `make demo` does not install
       Semantic Kernel: add it with .venv/bin/pip install -e ".[semantic-kernel]")
"""

import asyncio

from semantic_kernel.agents import ChatCompletionAgent

from persona_plugins.adapters.semantic_kernel import PersonaChatCompletion, embedded_chat_completion


async def main() -> None:
    service = PersonaChatCompletion(
        embedded_chat_completion(generation={"max_tokens": 96}), persona="pirate_captain"
    )
    agent = ChatCompletionAgent(service=service, name="captain")

    response = await agent.get_response("What should I pack for a day at the beach?")
    print(f"[{response.message.name}] {response.message.content}\n")

    # The same conversation, streamed (what the orchestrations do).
    print(f"[{agent.name}] ", end="")
    follow_up = "And what should I leave at home?"
    async for chunk in agent.invoke_stream(follow_up, thread=response.thread):
        print(chunk.message.content, end="", flush=True)
    print()

    prepared = service.last_prepared
    print(
        f"\npersona: {prepared.persona.name}, model calls: {service.model_calls}, "
        f"tokens: {service.usage.input_tokens} in, {service.usage.output_tokens} out"
    )


if __name__ == "__main__":
    asyncio.run(main())
