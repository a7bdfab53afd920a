"""An AutoGen AssistantAgent that answers as a persona, on the embedded model.

Run: python examples/autogen_assistant.py
Needs: pip install "persona-plugins[autogen,local]"
       (from a clone: pip install -e ".[autogen,local]", which `make demo` has already done)
"""

import asyncio

from autogen_agentchat.agents import AssistantAgent

from persona_plugins.adapters.autogen import PersonaChatCompletionClient, embedded_model_client


async def main() -> None:
    client = PersonaChatCompletionClient(embedded_model_client(), persona="pirate_captain")
    agent = AssistantAgent("captain", model_client=client)
    result = await agent.run(task="What should I pack for a day at the beach?")
    print(result.messages[-1].content)
    turn = client.last_result
    print(f"\npersona: {turn.persona.name}, model calls: {turn.model_calls}, tokens: {turn.usage}")


if __name__ == "__main__":
    asyncio.run(main())
