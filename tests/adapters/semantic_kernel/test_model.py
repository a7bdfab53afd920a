"""``ChatModelChatCompletion`` (SK on any persona-plugins chat model, here the embedded SmolLM2) and
``SemanticKernelChatModel`` (any SK service as a persona-plugins chat model)."""

from __future__ import annotations

import pytest
from semantic_kernel import Kernel
from semantic_kernel.connectors.ai.completion_usage import CompletionUsage
from semantic_kernel.connectors.ai.function_choice_behavior import FunctionChoiceBehavior
from semantic_kernel.connectors.ai.prompt_execution_settings import PromptExecutionSettings
from semantic_kernel.contents import (
    ChatHistory,
    ChatMessageContent,
    FunctionCallContent,
    StreamingChatMessageContent,
)
from semantic_kernel.contents.utils.author_role import AuthorRole
from semantic_kernel.contents.utils.finish_reason import FinishReason
from semantic_kernel.functions import KernelArguments

from persona_plugins import Message, PersonaPipeline
from persona_plugins.adapters.semantic_kernel import (
    ChatModelChatCompletion,
    ChatModelPromptExecutionSettings,
    SemanticKernelChatModel,
    embedded_chat_completion,
)

from .doubles import RecordingChatCompletion

pytestmark = pytest.mark.model


def history(*turns: tuple[str, str]) -> ChatHistory:
    chat = ChatHistory()
    for role, text in turns:
        chat.add_message(ChatMessageContent(role=AuthorRole(role), content=text))
    return chat


async def test_a_kernel_runs_a_prompt_on_the_embedded_model(recording_model):
    kernel = Kernel()
    kernel.add_service(ChatModelChatCompletion(recording_model))

    result = await kernel.invoke_prompt("Say hello to the crew.")

    message = result.value[0]
    assert message.role == AuthorRole.ASSISTANT and message.content.strip()
    assert message.ai_model_id == recording_model.model_name
    usage = message.metadata["usage"]
    assert isinstance(usage, CompletionUsage) and usage.prompt_tokens > 0
    assert message.finish_reason in (FinishReason.STOP, FinishReason.LENGTH)
    assert [(m.role, m.content) for m in recording_model.calls[0]["messages"]] == [
        ("user", "Say hello to the crew.")
    ]


async def test_it_streams_the_answer_as_one_chunk_with_usage(recording_model):
    service = ChatModelChatCompletion(recording_model)

    batches = [
        batch
        async for batch in service.get_streaming_chat_message_contents(
            history(("user", "Name a colour.")), ChatModelPromptExecutionSettings(max_tokens=8)
        )
    ]

    assert len(batches) == 1 and isinstance(batches[0][0], StreamingChatMessageContent)
    assert batches[0][0].content.strip()
    assert batches[0][0].metadata["usage"].completion_tokens <= 8


async def test_settings_reach_the_model_as_generation_settings(recording_model):
    service = ChatModelChatCompletion(recording_model)
    settings = service.instantiate_prompt_execution_settings(
        max_tokens=6, temperature=0.0, repeat_penalty=1.3
    )

    await service.get_chat_message_contents(history(("user", "Count to three.")), settings)

    assert recording_model.calls[0]["settings"] == {
        "max_tokens": 6,
        "temperature": 0.0,
        "repeat_penalty": 1.3,
    }


async def test_generic_settings_are_converted_to_its_own(recording_model):
    service = ChatModelChatCompletion(recording_model)

    await service.get_chat_message_contents(
        history(("user", "Count to three.")), PromptExecutionSettings(max_tokens=5)
    )

    assert recording_model.calls[0]["settings"] == {"max_tokens": 5}


async def test_function_choice_is_ignored_because_it_has_no_function_calling(recording_model):
    kernel = Kernel()
    kernel.add_service(ChatModelChatCompletion(recording_model))
    settings = ChatModelPromptExecutionSettings(
        max_tokens=8, function_choice_behavior=FunctionChoiceBehavior.Auto()
    )

    result = await kernel.invoke_prompt("Hello!", arguments=KernelArguments(settings=settings))

    assert str(result).strip()
    assert ChatModelChatCompletion.SUPPORTS_FUNCTION_CALLING is False


async def test_a_history_with_function_calls_is_refused_with_a_reason(recording_model):
    service = ChatModelChatCompletion(recording_model)
    chat = history(("user", "What is the weather?"))
    chat.add_message(
        ChatMessageContent(
            role=AuthorRole.ASSISTANT,
            items=[FunctionCallContent(id="1", name="weather-forecast", arguments="{}")],
        )
    )

    with pytest.raises(ValueError, match="text only"):
        await service.get_chat_message_contents(chat, PromptExecutionSettings())
    assert recording_model.calls == []


def test_only_a_chat_model_can_back_the_service():
    with pytest.raises(TypeError, match="ChatModel"):
        ChatModelChatCompletion("not a model")  # type: ignore[arg-type]


def test_the_embedded_service_shortcut_bounds_generation():
    service = embedded_chat_completion(generation={"max_tokens": 32}, service_id="local")
    assert service.service_id == "local"
    assert service.model.generation["max_tokens"] == 32
    assert service.ai_model_id == service.model.model_name


async def test_any_sk_service_runs_the_pipeline_as_a_chat_model(recording_model):
    inner = RecordingChatCompletion(recording_model)
    settings = ChatModelPromptExecutionSettings(
        temperature=0.0, function_choice_behavior=FunctionChoiceBehavior.Auto()
    )
    model = SemanticKernelChatModel(inner, settings)

    result = await PersonaPipeline(model, persona="historian").run("Who was Erasmus?")

    assert result.text.strip() and result.usage.output_tokens > 0
    sent = inner.received[0]
    assert sent["settings"].function_choice_behavior is None, "plain completions only"
    assert settings.function_choice_behavior is not None, "the caller's settings are untouched"
    assert [m.role.value for m in sent["messages"]] == ["system", "user"]
    assert model.responses[0].content == result.text


async def test_generation_settings_from_the_pipeline_land_on_the_settings_fields(
    recording_model,
):
    inner = RecordingChatCompletion(recording_model)
    model = SemanticKernelChatModel(inner)

    await model.complete([Message.user("Hello")], max_tokens=4, repeat_penalty=1.1)

    sent = inner.received[0]["settings"]
    assert isinstance(sent, ChatModelPromptExecutionSettings) and sent.max_tokens == 4
    assert sent.extension_data["repeat_penalty"] == 1.1
    assert recording_model.calls[0]["settings"] == {"max_tokens": 4, "repeat_penalty": 1.1}
