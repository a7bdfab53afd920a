"""A persona-only call with nothing recording goes to the inner service with no turn machinery
(``PersonaChatCompletion._quick``): it must send, return, count and describe exactly what the
usual path does, and step aside as soon as a plugin, the config, a tracer or a meter asks for
more, and for what only the usual path handles (an empty history, non-text content)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.util._once import Once
from semantic_kernel import Kernel
from semantic_kernel.agents import ChatCompletionAgent
from semantic_kernel.connectors.ai.prompt_execution_settings import PromptExecutionSettings
from semantic_kernel.contents import (
    ChatHistory,
    ChatMessageContent,
    FunctionResultContent,
    ImageContent,
    TextContent,
)
from semantic_kernel.contents.utils.author_role import AuthorRole
from semantic_kernel.functions import kernel_function

from persona_plugins import TurnResult, hookimpl, semconv
from persona_plugins.adapters.semantic_kernel import PersonaChatCompletion
from tests.core.doubles import registered

from .doubles import CannedChatCompletion, FailingChatCompletion

USER, SYSTEM, ASSISTANT = AuthorRole.USER, AuthorRole.SYSTEM, AuthorRole.ASSISTANT

CONVERSATIONS = {
    "user only": lambda: [ChatMessageContent(role=USER, content="What is 2 + 2?")],
    "system led": lambda: [
        ChatMessageContent(role=SYSTEM, content="Be brief."),
        ChatMessageContent(role=USER, content="What is 2 + 2?", name="ann"),
    ],
    "developer led": lambda: [
        ChatMessageContent(role=AuthorRole.DEVELOPER, content="Be brief."),
        ChatMessageContent(role=USER, content="What is 2 + 2?"),
    ],
    "earlier turns": lambda: [
        ChatMessageContent(role=SYSTEM, content="Be brief."),
        ChatMessageContent(role=USER, content="Hello."),
        ChatMessageContent(role=ASSISTANT, content="Hello, friend.", name="helper"),
        ChatMessageContent(role=USER, content="What is 2 + 2?"),
    ],
}


def texts(messages: list[Any]) -> list[tuple[str, str, str | None]]:
    return [(m.role.value, m.content, m.name) for m in messages]


def described(turn: TurnResult | None) -> dict[str, Any]:
    assert turn is not None
    return turn.model_dump(exclude={"duration_s"})


def usual(service: PersonaChatCompletion) -> PersonaChatCompletion:
    """``service`` with its quick route switched off: every call takes the usual path."""
    service.__dict__["_quick"] = lambda messages: None
    return service


def pair(**config: Any) -> tuple[PersonaChatCompletion, PersonaChatCompletion]:
    """Two wrappers alike over two canned services: one as it is, one forced the usual way."""
    options = {"instruction_role": config.pop("instruction_role", "system")}
    config.setdefault("persona", "chef")
    quick = PersonaChatCompletion(CannedChatCompletion(ai_model_id="canned", **options), **config)
    forced = PersonaChatCompletion(CannedChatCompletion(ai_model_id="canned", **options), **config)
    return quick, usual(forced)


async def call(
    service: PersonaChatCompletion, messages: list[ChatMessageContent], *, stream: bool = False
) -> tuple[ChatHistory, list[tuple[str, str, dict[str, Any]]]]:
    """One call the way SK makes it; the caller's history after it and what came back."""
    history = ChatHistory(messages=messages)
    settings = PromptExecutionSettings(extension_data={"seed": 7})
    if stream:
        chunks = service.get_streaming_chat_message_contents(history, settings)
        got = [m for batch in [b async for b in chunks] for m in batch]
    else:
        got = await service.get_chat_message_contents(history, settings)
    return history, [(m.role.value, m.content, dict(m.metadata)) for m in got]


def received(service: PersonaChatCompletion) -> dict[str, Any]:
    return service.inner.received[-1]  # type: ignore[attr-defined,no-any-return]


@pytest.mark.parametrize("stream", [False, True], ids=["call", "stream"])
@pytest.mark.parametrize("role", ["system", "developer"])
@pytest.mark.parametrize("name", CONVERSATIONS)
async def test_a_persona_only_call_sends_returns_counts_and_describes_what_the_usual_path_does(
    name, role, stream
):
    quick, forced = pair(instruction_role=role, model_settings={"max_tokens": 50})
    outcomes = []
    for service in (quick, forced):
        for _ in range(2):  # the second call reuses what the first one made
            messages = CONVERSATIONS[name]()
            history, got = await call(service, messages, stream=stream)
            sent = received(service)["messages"]
            assert all(a is b for a, b in zip(sent[1:], messages, strict=True))
        outcomes.append((texts(sent), received(service)["settings"].model_dump(), got))
        outcomes[-1] += (texts(history.messages), service.last_prepared.model_dump())
    assert quick._quick(CONVERSATIONS[name]()) is not None
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0][0] == (role, quick.last_prepared.system_prompt, None)
    assert outcomes[0][1]["extension_data"] == {"seed": 7, "max_tokens": 50}
    assert described(quick.last_result) == described(forced.last_result)
    assert quick.last_result.prompt == quick.last_prepared.prompt
    assert quick.model_calls == forced.model_calls == 2
    assert quick.usage == forced.usage


@pytest.mark.parametrize("name", ["user only", "system led", "developer led"])
async def test_with_merged_system_messages_a_leading_one_takes_the_persona_the_usual_way(name):
    quick, forced = pair(merge_system_messages=True)
    for service in (quick, forced):
        await call(service, CONVERSATIONS[name]())
    leads = name != "user only"
    assert (quick._quick(CONVERSATIONS[name]()) is None) is leads
    assert texts(received(quick)["messages"]) == texts(received(forced)["messages"])
    assert len(received(quick)["messages"]) == 2
    head = received(quick)["messages"][0]
    assert head.content.startswith("You are ")
    assert head.content.endswith("Be brief.") is leads
    assert described(quick.last_result) == described(forced.last_result)


async def test_the_inner_service_instruction_role_and_persona_are_read_on_every_call():
    service, _ = pair()
    await call(service, CONVERSATIONS["user only"]())
    first = received(service)["messages"][0]
    first.content = "tampered with by the service"
    await call(service, CONVERSATIONS["user only"]())
    second = received(service)["messages"][0]
    service.inner.instruction_role = "developer"
    await call(service, CONVERSATIONS["user only"]())
    third = received(service)["messages"][0]
    service.inner = CannedChatCompletion(ai_model_id="other", instruction_role="system")
    await call(service, CONVERSATIONS["user only"]())
    fourth = received(service)["messages"][0]

    persona = service.last_prepared.system_prompt
    assert texts([second, third, fourth]) == [
        ("system", persona, None),
        ("developer", persona, None),
        ("system", persona, None),
    ]


async def test_the_persona_message_is_reused_only_while_nothing_changed_it():
    service, _ = pair()
    heads = []
    for change in (None, None, lambda m: m.metadata.update(seen=True), None):
        await call(service, CONVERSATIONS["user only"]())
        heads.append(received(service)["messages"][0])
        if change is not None:
            change(heads[-1])
    assert heads[1] is heads[0]
    assert heads[3] is not heads[2] and heads[3].metadata == {}
    assert texts(heads[2:]) == texts(heads[:2])


async def test_a_plugin_watching_turns_registered_after_the_service_was_built_sees_the_next_call(
    plugin_manager,
):
    seen: list[str] = []

    class Watcher:
        @hookimpl
        def on_turn_complete(self, result):
            seen.append(result.text)

    service = PersonaChatCompletion(
        CannedChatCompletion(answer="Four."), persona="chef", plugin_manager=plugin_manager
    )
    await call(service, CONVERSATIONS["user only"]())
    with registered(plugin_manager, Watcher()):
        await call(service, CONVERSATIONS["user only"]())
    await call(service, CONVERSATIONS["user only"]())
    assert seen == ["Four."]


async def test_a_persona_hook_registered_after_the_service_was_built_is_called_on_the_next_call(
    plugin_manager,
):
    class Writer:
        @hookimpl
        def persona_system_prompt(self):
            return "You are a plugin's persona."

    service = PersonaChatCompletion(
        CannedChatCompletion(), persona="chef", plugin_manager=plugin_manager
    )
    heads = []
    for plugins in ([], [Writer()], []):
        with registered(plugin_manager, *plugins):
            await call(service, CONVERSATIONS["user only"]())
        heads.append(received(service)["messages"][0].content)
    assert heads[1] == "You are a plugin's persona."
    assert heads[0] == heads[2] != heads[1]
    assert service.last_result.system_prompt == heads[2]


async def test_a_config_changed_after_the_service_was_built_is_followed_on_the_next_call():
    service, _ = pair()
    await call(service, CONVERSATIONS["user only"]())
    service.pipeline.config.persona_template = "roleplay"
    await call(service, CONVERSATIONS["user only"]())
    service.pipeline.config.persona_mode = "none"
    await call(service, CONVERSATIONS["user only"]())
    first, second, third = (r["messages"] for r in service.inner.received)
    assert first[0].content.startswith("You are ")
    assert second[0].content.startswith("This conversation is a role-play.")
    assert texts(third) == texts(CONVERSATIONS["user only"]())
    assert service.last_result.persona is None and service.last_prepared.persona is None


@pytest.fixture
def unset_global_providers(monkeypatch):
    """OpenTelemetry's global tracer and meter providers as in a fresh process: not set yet
    (each can be set once per process; put back after the test)."""
    from opentelemetry.metrics import _internal as state

    import persona_plugins.metrics as pp_metrics

    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    monkeypatch.setattr(trace, "_TRACER_PROVIDER_SET_ONCE", Once())
    monkeypatch.setattr(state, "_METER_PROVIDER", None)
    monkeypatch.setattr(state, "_METER_PROVIDER_SET_ONCE", Once())
    monkeypatch.setattr(state, "_PROXY_METER_PROVIDER", state._ProxyMeterProvider())
    monkeypatch.setattr(pp_metrics, "_global", [])


async def test_a_tracer_provider_set_after_the_service_was_built_traces_the_next_call(
    unset_global_providers, memory_tracing
):
    provider, exporter = memory_tracing
    service, _ = pair()
    await call(service, CONVERSATIONS["user only"]())
    assert exporter.get_finished_spans() == ()

    trace.set_tracer_provider(provider)
    await call(service, CONVERSATIONS["user only"]())

    names = [span.name for span in exporter.get_finished_spans()]
    assert f"{semconv.SPAN_STAGE_PREFIX}prepare" in names
    assert service.model_calls == 2


async def test_a_meter_provider_set_after_the_service_was_built_measures_the_next_call(
    unset_global_providers,
):
    from opentelemetry import metrics

    service, _ = pair()
    await call(service, CONVERSATIONS["user only"]())
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        metrics.set_meter_provider(provider)
        await call(service, CONVERSATIONS["user only"]())
        data = reader.get_metrics_data()
    finally:
        provider.shutdown()
    points = [
        (point.attributes["persona_plugins.stage"], point.count)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "persona_plugins.stage.duration"
        for point in metric.data.data_points
    ]
    assert ("inject_persona", 1) in points  # the one call after the provider was set


NOT_QUICK = {
    "empty history": lambda: [],
    "an image": lambda: [
        ChatMessageContent(
            role=USER,
            items=[
                TextContent(text="What is in this picture?"),
                ImageContent(uri="https://example.org/cat.png"),
            ],
        )
    ],
    "a function result": lambda: [
        ChatMessageContent(role=USER, content="Weather in Oslo?"),
        ChatMessageContent(
            role=AuthorRole.TOOL,
            items=[FunctionResultContent(id="call_1", name="weather-get", result="Rain.")],
        ),
    ],
}


@pytest.mark.parametrize("stream", [False, True], ids=["call", "stream"])
@pytest.mark.parametrize("name", NOT_QUICK)
async def test_an_empty_history_or_non_text_content_takes_the_usual_path(name, stream):
    quick, forced = pair()
    assert quick._quick(NOT_QUICK[name]()) is None
    for service in (quick, forced):
        await call(service, NOT_QUICK[name](), stream=stream)
    assert texts(received(quick)["messages"]) == texts(received(forced)["messages"])
    assert described(quick.last_result) == described(forced.last_result)
    assert quick.model_calls == forced.model_calls == 1


class Weather:
    @kernel_function(name="get", description="The weather in a city.")
    def get(self, city: str) -> str:
        return f"Rain in {city}."


@pytest.mark.parametrize("stream", [False, True], ids=["get_response", "invoke_stream"])
async def test_a_function_calling_loop_ends_as_on_the_usual_path(stream):
    # The loop's calls and results reach the agent's thread and last_result either way.
    outcomes = []
    for service in pair():
        service.inner.function = "weather-get"
        kernel = Kernel()
        kernel.add_plugin(Weather(), "weather")
        agent = ChatCompletionAgent(service=service, name="forecaster", kernel=kernel)
        if stream:
            items = [item async for item in agent.invoke_stream("Weather in Oslo?")]
            thread = items[-1].thread
        else:
            response = await agent.get_response("Weather in Oslo?")
            thread = response.thread
        history = [m async for m in thread.get_messages()]
        outcomes.append((texts(history), [texts(r["messages"]) for r in service.inner.received]))
        outcomes[-1] += (described(service.last_result), service.model_calls)
    assert outcomes[0] == outcomes[1]
    assert any(isinstance(i, FunctionResultContent) for m in history for i in m.items)
    assert outcomes[0][2]["candidates"][0]["metadata"]["tool_calls"][0]["name"] == "weather-get"


async def test_an_inner_service_error_and_a_timeout_reach_the_caller_as_on_the_usual_path():
    def failing() -> PersonaChatCompletion:
        inner = FailingChatCompletion(ai_model_id="failing", error=RuntimeError("down"))
        return PersonaChatCompletion(inner, persona="chef")

    for service in (failing(), usual(failing())):
        with pytest.raises(RuntimeError, match="down"):
            await call(service, CONVERSATIONS["user only"]())
        assert service.model_calls == 0

    class Slow(CannedChatCompletion):
        async def get_chat_message_contents(self, chat_history, settings, **kwargs):
            await asyncio.sleep(5)
            raise AssertionError("not reached")

    for service in (
        PersonaChatCompletion(Slow(), persona="chef", timeout_s=0.01),
        usual(PersonaChatCompletion(Slow(), persona="chef", timeout_s=0.01)),
    ):
        with pytest.raises(TimeoutError):
            await call(service, CONVERSATIONS["user only"]())
