"""Server-specific generation settings (`model_settings.extra`) reach framework clients flat.

The core checks generation settings by name and keeps other names in an ``extra`` table; AutoGen's
``extra_create_args`` and Semantic Kernel's execution settings are flat, so the adapters flatten
the table on the way out and nest unknown names on the way in.
"""

from __future__ import annotations

import pytest

from persona_plugins import ConfigError, PipelineConfig
from persona_plugins.config import flatten_generation_settings, nest_generation_settings

pytest.importorskip("autogen_agentchat")


def test_flatten_and_nest_are_inverse():
    nested = {"max_tokens": 8, "extra": {"n": 1, "reasoning_effort": "low"}}
    flat = flatten_generation_settings(nested)

    assert flat == {"max_tokens": 8, "n": 1, "reasoning_effort": "low"}
    assert nest_generation_settings(flat) == nested
    assert nest_generation_settings({"seed": 3}) == {"seed": 3}


@pytest.mark.server
async def test_an_openai_only_parameter_in_extra_reaches_autogens_openai_client(llama_server):
    from autogen_agentchat.agents import AssistantAgent
    from autogen_core.models import ModelInfo
    from autogen_ext.models.openai import OpenAIChatCompletionClient

    from persona_plugins.adapters.autogen import PersonaChatCompletionClient

    inner = OpenAIChatCompletionClient(
        model="smollm2",
        base_url=llama_server,
        api_key="none",
        model_info=ModelInfo(
            vision=False,
            function_calling=False,
            json_output=False,
            family="unknown",
            structured_output=False,
        ),
    )
    # `n` is an OpenAI parameter that is not one of the core's generation settings.
    config = PipelineConfig(persona="chef", model_settings={"max_tokens": 8, "extra": {"n": 1}})
    client = PersonaChatCompletionClient(inner, config)
    agent = AssistantAgent("cook", model_client=client)

    result = await agent.run(task="Name one herb.")

    assert result.messages[-1].content.strip()
    assert client.last_result is not None
    assert client.last_result.usage.output_tokens <= 8


@pytest.mark.model
async def test_flat_autogen_arguments_reach_the_embedded_model_as_extra(embedded_model):
    from autogen_core.models import UserMessage

    from persona_plugins.adapters.autogen import ChatModelCompletionClient

    client = ChatModelCompletionClient(embedded_model)

    result = await client.create(
        [UserMessage(content="Say hello.", source="user")],
        extra_create_args={"max_tokens": 4, "mirostat_mode": 0},
    )
    assert result.usage.completion_tokens <= 4

    with pytest.raises(ConfigError, match="bogus_setting"):
        await client.create(
            [UserMessage(content="Say hello.", source="user")],
            extra_create_args={"bogus_setting": 1},
        )


def test_semantic_kernel_settings_get_the_extra_table_flat():
    pytest.importorskip("semantic_kernel")
    from semantic_kernel.connectors.ai.open_ai import OpenAIChatPromptExecutionSettings

    from persona_plugins.adapters.semantic_kernel._model import with_generation

    settings = with_generation(
        OpenAIChatPromptExecutionSettings(),
        {"max_tokens": 8, "extra": {"reasoning_effort": "low", "vendor_knob": 3}},
    )

    assert settings.max_tokens == 8
    assert settings.reasoning_effort == "low"  # a field of the settings class
    assert settings.extension_data["vendor_knob"] == 3  # anything else: extension data
    assert "extra" not in settings.extension_data
