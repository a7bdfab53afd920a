"""``PersonaPlugin`` registered on a real kernel: its kernel functions, on the embedded model, and
the filters it installs and removes.

SmolLM2-135M is weak, so these tests check structure (which persona reached the model, how many
calls, what the functions return), never the quality of an answer.
"""

from __future__ import annotations

import json

import pytest
from semantic_kernel import Kernel
from semantic_kernel.connectors.ai.function_choice_behavior import FunctionChoiceBehavior
from semantic_kernel.connectors.ai.prompt_execution_settings import PromptExecutionSettings
from semantic_kernel.contents import FunctionResultContent
from semantic_kernel.filters import FilterTypes
from semantic_kernel.functions import KernelArguments

from persona_plugins import ModelCallError, PipelineConfig
from persona_plugins.adapters.semantic_kernel import (
    ChatModelChatCompletion,
    PersonaChatCompletion,
    PersonaPlugin,
)
from persona_plugins.injection import render_persona

from .doubles import FunctionCallingChatCompletion, RecordingChatCompletion, RecordingModel

FUNCTIONS = {"answer", "ensemble", "refine", "check_bias"}


def kernel_with(service, plugin: PersonaPlugin) -> Kernel:
    kernel = Kernel()
    kernel.add_service(service)
    kernel.add_plugin(plugin, "persona")
    return kernel


def persona_prompt(plugin: PersonaPlugin) -> str:
    config = plugin.pipeline.config
    return render_persona(config.persona, config.persona_template)


# -- registration -------------------------------------------------------------------------------


def test_the_plugin_registers_four_described_kernel_functions():
    kernel = Kernel()
    kernel.add_plugin(PersonaPlugin(persona="pirate_captain"), "persona")

    functions = kernel.get_plugin("persona").functions
    assert set(functions) == FUNCTIONS
    for function in functions.values():
        assert function.description, f"{function.name} has no description for the model"
        assert function.is_prompt is False


def test_the_model_sees_only_the_parameters_it_fills_in():
    kernel = Kernel()
    kernel.add_plugin(PersonaPlugin(persona="pirate_captain"), "persona")

    shown = {
        metadata.name: {p.name for p in metadata.parameters if p.include_in_function_choices}
        for metadata in kernel.get_full_list_of_function_metadata()
    }
    assert shown == {
        "answer": {"question"},
        "ensemble": {"question"},
        "refine": {"question", "response"},
        "check_bias": {"text", "question"},
    }
    required = {
        metadata.name: {p.name for p in metadata.parameters if p.is_required}
        for metadata in kernel.get_full_list_of_function_metadata()
    }
    assert "question" not in required["check_bias"]


def test_the_plugin_name_defaults_to_persona():
    kernel = Kernel()
    kernel.add_plugin(PersonaPlugin(persona="historian"))
    assert "persona" in kernel.plugins


def test_adding_the_plugin_installs_its_filters_once():
    plugin = PersonaPlugin(persona="historian", guard="monitor")
    kernel = Kernel()

    kernel.add_plugin(plugin, "persona")
    kernel.add_plugin(plugin, "persona")  # again: no second copy of the filters

    assert [f for _, f in kernel.prompt_rendering_filters] == [plugin.prompt_filter]
    assert [f for _, f in kernel.function_invocation_filters] == [plugin.invocation_filter]


def test_without_guardrails_no_function_filter_is_installed():
    plugin = PersonaPlugin(persona="historian")  # guard="off" by default
    kernel = Kernel()
    kernel.add_plugin(plugin, "persona")

    assert [f for _, f in kernel.prompt_rendering_filters] == [plugin.prompt_filter]
    assert kernel.function_invocation_filters == []


def test_without_a_persona_no_prompt_filter_is_installed():
    plugin = PersonaPlugin(persona_mode="none", guard="enforce")
    kernel = Kernel()
    kernel.add_plugin(plugin, "persona")

    assert kernel.prompt_rendering_filters == []
    assert [f for _, f in kernel.function_invocation_filters] == [plugin.invocation_filter]


def test_remove_filters_takes_them_out_and_keeps_the_functions_and_other_filters():
    plugin = PersonaPlugin(persona="historian", guard="monitor")
    kernel = Kernel()

    async def own_filter(context, next):
        await next(context)

    kernel.add_filter(FilterTypes.PROMPT_RENDERING, own_filter)
    kernel.add_plugin(plugin, "persona")
    other = Kernel()
    other.add_plugin(plugin, "persona")

    plugin.remove_filters(kernel)

    assert [f for _, f in kernel.prompt_rendering_filters] == [own_filter]
    assert kernel.function_invocation_filters == []
    assert set(kernel.get_plugin("persona").functions) == FUNCTIONS
    assert [f for _, f in other.prompt_rendering_filters] == [plugin.prompt_filter]

    plugin.remove_filters()  # every remaining kernel
    assert other.prompt_rendering_filters == []


def test_install_filters_false_adds_functions_only():
    kernel = Kernel()
    kernel.add_plugin(PersonaPlugin(persona="historian", install_filters=False), "persona")
    assert kernel.prompt_rendering_filters == []
    assert set(kernel.get_plugin("persona").functions) == FUNCTIONS


def test_the_plugin_takes_the_same_config_as_the_autogen_adapter(tmp_path):
    config = PipelineConfig(persona="math_teacher", ensemble="jekyll_hyde", guard="monitor")
    plugin = PersonaPlugin(config, refine="adaptive")

    assert plugin.pipeline.config.persona.name == "math_teacher"
    assert plugin.pipeline.config.ensemble == "jekyll_hyde"
    assert plugin.pipeline.config.refine == "adaptive"


def test_the_pipeline_alone_cannot_run_without_a_kernel():
    plugin = PersonaPlugin(persona="historian")
    with pytest.raises(ModelCallError, match=r"through a kernel \(kernel.invoke"):
        plugin.pipeline.run_sync("Hello?")


# -- invocation on the embedded model -----------------------------------------------------------


@pytest.mark.model
async def test_answer_replies_as_the_persona_on_the_kernel_service(service, recording_model):
    plugin = PersonaPlugin(persona="pirate_captain")
    kernel = kernel_with(service, plugin)

    result = await kernel.invoke(
        plugin_name="persona", function_name="answer", question="Where is the treasure?"
    )

    turn = plugin.last_result
    assert str(result) == turn.text and turn.text.strip()
    assert turn.persona.name == "pirate_captain" and turn.model_calls == 1
    sent = recording_model.calls[0]["messages"]
    assert [(m.role, m.content) for m in sent] == [
        ("system", persona_prompt(plugin)),
        ("user", "Where is the treasure?"),
    ]
    assert turn.usage.input_tokens > 0 and turn.usage.output_tokens > 0


@pytest.mark.model
async def test_ensemble_answers_with_and_without_the_persona(service, recording_model):
    plugin = PersonaPlugin(persona="math_teacher", model_settings={"max_tokens": 24})
    kernel = kernel_with(service, plugin)

    result = await kernel.invoke(
        plugin_name="persona", function_name="ensemble", question="What is 12 + 30?"
    )

    turn = plugin.last_result
    assert str(result) == turn.text
    assert {c.name for c in turn.candidates} >= {"persona", "neutral"}
    assert turn.chosen in {c.name for c in turn.candidates}
    systems = [c["messages"][0].content for c in recording_model.calls[:2]]
    assert persona_prompt(plugin) in systems, "one candidate had the persona"
    assert any(c["messages"][0].role == "user" for c in recording_model.calls[:2]), (
        "the other answered neutrally"
    )
    assert plugin.pipeline.config.ensemble == "off", "the plugin's own config is unchanged"


@pytest.mark.model
async def test_refine_runs_the_reviewers_on_a_response(service):
    plugin = PersonaPlugin(persona="historian", model_settings={"max_tokens": 32})
    kernel = kernel_with(service, plugin)

    result = await kernel.invoke(
        plugin_name="persona",
        function_name="refine",
        question="Why did people build castles?",
        response="Castles were built for fun.",
    )

    turn = plugin.last_result
    assert str(result) == turn.text and turn.text.strip()
    assert turn.refinement_plan is not None
    assert turn.model_calls >= 1 and turn.reviews
    assert {r.refiner for r in turn.reviews} <= {"factuality", "persona", "coherence"}


@pytest.mark.model
async def test_check_bias_reports_what_the_detectors_find(service, guarded_manager, detector):
    detector.flags = lambda text: "stereotype" in text
    plugin = PersonaPlugin(persona="historian", plugin_manager=guarded_manager)
    kernel = kernel_with(service, plugin)

    flagged = await kernel.invoke(
        plugin_name="persona",
        function_name="check_bias",
        text="A stereotype about sailors.",
        question="Tell me about sailors.",
    )
    clean = await kernel.invoke(
        plugin_name="persona", function_name="check_bias", text="Sailors work at sea."
    )

    report = json.loads(str(flagged))
    ours = [f for f in report["findings"] if f["detector"] == "test_detector"]
    assert report["clean"] is False and ours[0]["severity"] == "high"
    assert [f.detector for f in plugin.last_findings if f.detector == "test_detector"] == []
    assert not [f for f in json.loads(str(clean))["findings"] if f["detector"] == "test_detector"]
    first = detector.checked[0]
    assert first["response"] == "A stereotype about sailors."
    assert [(m.role, m.content) for m in first["messages"]] == [("user", "Tell me about sailors.")]
    assert first["persona"].name == "historian"
    assert service.received == [], "checking a text makes no model call"


@pytest.mark.model
async def test_the_functions_run_on_the_service_the_arguments_name(recording_model):
    first = RecordingChatCompletion(RecordingModel(recording_model), service_id="first")
    chosen = RecordingChatCompletion(recording_model, service_id="chosen")
    kernel = Kernel()
    kernel.add_service(first)
    kernel.add_service(chosen)
    plugin = PersonaPlugin(persona="historian")
    kernel.add_plugin(plugin, "persona")

    await kernel.invoke(
        plugin_name="persona",
        function_name="answer",
        arguments=KernelArguments(
            settings=PromptExecutionSettings(service_id="chosen"), question="Who was Erasmus?"
        ),
    )

    assert first.received == [] and len(chosen.received) == 1


@pytest.mark.model
async def test_a_service_id_pins_the_plugin_to_one_service(recording_model):
    first = RecordingChatCompletion(RecordingModel(recording_model), service_id="first")
    pinned = RecordingChatCompletion(recording_model, service_id="pinned")
    kernel = Kernel()
    kernel.add_service(first)
    kernel.add_service(pinned)
    plugin = PersonaPlugin(persona="historian", service_id="pinned")
    kernel.add_plugin(plugin, "persona")

    await kernel.invoke(plugin_name="persona", function_name="answer", question="Who was Luther?")

    assert first.received == [] and len(pinned.received) == 1


@pytest.mark.model
async def test_on_a_persona_wrapped_service_the_plugin_runs_on_the_inner_one(
    service, recording_model
):
    wrapped = PersonaChatCompletion(service, persona="children_tutor")
    plugin = PersonaPlugin(persona="pirate_captain")
    kernel = kernel_with(wrapped, plugin)

    await kernel.invoke(plugin_name="persona", function_name="answer", question="Hello?")

    assert wrapped.model_calls == 0, "no second pipeline around the plugin's own"
    systems = [m.content for m in recording_model.calls[0]["messages"] if m.role == "system"]
    assert systems == [persona_prompt(plugin)]


@pytest.mark.model
async def test_the_model_can_call_the_answer_function_as_a_tool(recording_model):
    service = FunctionCallingChatCompletion(
        recording_model, function="persona-answer", arguments={"question": "Who are you?"}
    )
    plugin = PersonaPlugin(persona="pirate_captain")
    kernel = kernel_with(service, plugin)
    settings = ChatModelChatCompletion(recording_model).instantiate_prompt_execution_settings(
        function_choice_behavior=FunctionChoiceBehavior.Auto()
    )
    result = await kernel.invoke_prompt(
        "Ask the persona who it is.", arguments=KernelArguments(settings=settings)
    )

    answer = plugin.last_result
    assert answer is not None and answer.persona.name == "pirate_captain"
    assert answer.prompt[-1].content == "Who are you?"
    results = [
        item.result
        for call in service.received
        for message in call["messages"]
        for item in message.items
        if isinstance(item, FunctionResultContent)
    ]
    assert results == [answer.text], "the answer went back to the model as the function result"
    assert str(result).strip()
