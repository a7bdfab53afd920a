"""The Semantic Kernel and AutoGen adapters in one process, on one embedded model, with one config.

Semantic Kernel's template helpers patch asyncio globally (``nest_asyncio.apply()``) the first
time a Handlebars prompt is rendered on a kernel with functions; the second test runs in its own
interpreter so that patch cannot leak into the rest of the suite.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap

import pytest
from autogen_agentchat.agents import AssistantAgent
from semantic_kernel import Kernel
from semantic_kernel.agents import ChatCompletionAgent

from persona_plugins import PipelineConfig
from persona_plugins.adapters.autogen import (
    ChatModelCompletionClient,
    PersonaChatCompletionClient,
)
from persona_plugins.adapters.semantic_kernel import (
    ChatModelChatCompletion,
    PersonaChatCompletion,
    PersonaPlugin,
)

from .doubles import RecordingModel

pytestmark = pytest.mark.model


async def test_autogen_and_semantic_kernel_agents_share_a_model_and_a_config(bounded_model):
    config = PipelineConfig(persona="pirate_captain", model_settings={"max_tokens": 24})
    autogen_model, sk_model = RecordingModel(bounded_model), RecordingModel(bounded_model)
    autogen_client = PersonaChatCompletionClient(ChatModelCompletionClient(autogen_model), config)
    sk_service = PersonaChatCompletion(ChatModelChatCompletion(sk_model), config)
    autogen_agent = AssistantAgent("captain", model_client=autogen_client, system_message=None)
    sk_agent = ChatCompletionAgent(service=sk_service, name="captain")
    kernel = Kernel()
    kernel.add_service(ChatModelChatCompletion(bounded_model))
    plugin = PersonaPlugin(config)
    kernel.add_plugin(plugin, "persona")

    autogen_result, sk_response, answer = await asyncio.gather(
        autogen_agent.run(task="Where is the treasure?"),
        sk_agent.get_response("Where is the treasure?"),
        kernel.invoke(plugin_name="persona", function_name="answer", question="Who are you?"),
    )

    assert autogen_result.messages[-1].content.strip()
    assert sk_response.message.content.strip() and str(answer).strip()
    autogen_system = autogen_model.calls[0]["messages"][0]
    sk_system = sk_model.calls[0]["messages"][0]
    assert autogen_system.role == sk_system.role == "system"
    assert autogen_system.content == sk_system.content, "one config, one persona prompt"
    assert plugin.last_result.system_prompt == sk_system.content
    assert all(call["settings"]["max_tokens"] == 24 for call in autogen_model.calls)
    assert all(call["settings"]["max_tokens"] == 24 for call in sk_model.calls)


BOTH_AFTER_NEST_ASYNCIO = textwrap.dedent(
    """
    import asyncio, json, os
    os.environ["PERSONA_PLUGINS_DISABLE_AUTOLOAD"] = "1"
    from autogen_agentchat.agents import AssistantAgent
    from semantic_kernel import Kernel
    from semantic_kernel.agents import ChatCompletionAgent
    from semantic_kernel.functions import KernelArguments
    from persona_plugins.adapters.autogen import (
        ChatModelCompletionClient, PersonaChatCompletionClient,
    )
    from persona_plugins.adapters.semantic_kernel import (
        ChatModelChatCompletion, PersonaChatCompletion, PersonaPlugin,
    )
    from persona_plugins.integrations.llama_cpp import LlamaCppChatModel

    async def main():
        model = LlamaCppChatModel(generation={"max_tokens": 16})
        kernel = Kernel()
        kernel.add_service(ChatModelChatCompletion(model))
        kernel.add_plugin(PersonaPlugin(persona="historian"), "persona")
        before = getattr(asyncio, "_nest_patched", False)
        # A Handlebars prompt on a kernel with functions: SK builds synchronous template
        # helpers, which patch asyncio globally.
        sk_prompt = await kernel.invoke_prompt(
            "Say hello to {{name}}.", template_format="handlebars",
            arguments=KernelArguments(name="Ada"),
        )
        after = getattr(asyncio, "_nest_patched", False)
        client = PersonaChatCompletionClient(
            ChatModelCompletionClient(model), persona="pirate_captain"
        )
        autogen_agent = AssistantAgent("captain", model_client=client)
        sk_agent = ChatCompletionAgent(
            service=PersonaChatCompletion(ChatModelChatCompletion(model), persona="pirate_captain"),
            name="captain",
        )
        autogen_result, sk_response = await asyncio.gather(
            autogen_agent.run(task="Where is the treasure?"),
            sk_agent.get_response("Where is the treasure?"),
        )
        print(json.dumps({
            "patched_before": before,
            "patched_after": after,
            "sk_prompt": str(sk_prompt),
            "autogen": autogen_result.messages[-1].content,
            "autogen_persona": client.last_result.persona.name,
            "sk": sk_response.message.content,
        }))

    asyncio.run(main())
    """
)


def test_both_adapters_still_work_after_semantic_kernel_patches_asyncio():
    done = subprocess.run(
        [sys.executable, "-c", BOTH_AFTER_NEST_ASYNCIO],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["patched_before"] is False and report["patched_after"] is True
    assert report["sk_prompt"].strip()
    assert report["autogen"].strip() and report["autogen_persona"] == "pirate_captain"
    assert report["sk"].strip()
