"""Point persona-plugins at any OpenAI-compatible server (Ollama, vLLM, llama.cpp's server).

Needs the ``server`` extra: AutoGen's OpenAI client (``autogen-ext[openai]``, which imports
``openai`` and ``tiktoken``) for this script, and llama.cpp's server (``llama-cpp-python[server]``)
with the embedded model to talk to:
    pip install -e ".[server]"                 from a clone (`make test` has it already)
    .venv/bin/pip install -e ".[server]"       after `make demo`
    pip install "persona-plugins[server]"      from a release

Start a server, for example llama.cpp's with the embedded model (the wrapper checks first that
the llama.cpp build runs on this CPU; it takes llama_cpp.server's options, --model defaulting to
the shipped SmolLM2):
    python -m persona_plugins.integrations.llama_cpp.server --model_alias smollm2 --port 8000

Run: python examples/openai_compatible_server.py http://127.0.0.1:8000/v1 smollm2
"""

import asyncio
import sys

from autogen_agentchat.agents import AssistantAgent
from autogen_ext.models.openai import OpenAIChatCompletionClient

from persona_plugins.adapters.autogen import PersonaChatCompletionClient


async def main(base_url: str, model: str) -> None:
    inner = OpenAIChatCompletionClient(
        model=model,
        base_url=base_url,
        api_key="not-needed",
        model_info={
            "vision": False,
            "function_calling": False,
            "json_output": False,
            "family": "unknown",
            "structured_output": False,
        },
    )
    client = PersonaChatCompletionClient(inner, persona="physician", ensemble="jekyll_hyde")
    agent = AssistantAgent("doctor", model_client=client)
    result = await agent.run(task="How much water should an adult drink a day?")
    print(result.messages[-1].content)
    print(f"\nmodel calls: {client.model_calls}, usage: {client.total_usage()}")
    await client.close()


if __name__ == "__main__":
    asyncio.run(
        main(
            sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000/v1",
            sys.argv[2] if len(sys.argv) > 2 else "smollm2",
        )
    )
