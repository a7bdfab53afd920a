"""A Microsoft Agent Framework agent that answers as a persona, on the embedded model.

PersonaMiddleware puts the persona in the instructions position, ahead of the agent's own
instructions, on every model call; the guard checks the reply before it is returned (and, when
streaming, before its first chunk is shown).

Run: python examples/agent_framework_agent.py
Needs: pip install "persona-plugins[agent-framework,local]"
       (from a clone: pip install -e ".[agent-framework,local]")
"""

import asyncio

from agent_framework import Agent

from persona_plugins.adapters.agent_framework import PersonaMiddleware, embedded_chat_client


async def main() -> None:
    persona = PersonaMiddleware(persona="pirate_captain", guard="enforce")
    agent = Agent(
        client=embedded_chat_client(generation={"max_tokens": 96}),
        name="captain",
        instructions="Answer in two or three sentences.",
        middleware=[persona],
    )
    response = await agent.run("What should I pack for a day at the beach?")
    print(f"[captain] {response.text}\n")
    print("[captain] ", end="")
    async for update in agent.run("And what should I leave at home?", stream=True):
        print(update.text, end="", flush=True)
    turn = persona.last_result
    print(f"\n\npersona: {turn.persona.name}, model calls: {persona.model_calls}")
    print(f"tokens: {persona.usage}")
    print(f"guard: {turn.action}, findings: {len(turn.findings)}")


if __name__ == "__main__":
    asyncio.run(main())
