"""Writing the persona into the prompt: templates, a system message at the head, merging."""

from __future__ import annotations

import pytest

from persona_plugins import Message, Persona, PersonaPipeline, hookimpl
from persona_plugins.injection import PERSONA_TEMPLATES, render_persona
from tests.core.doubles import ScriptedModel, registered

QUESTION = "What is 2 + 2?"


def test_the_three_built_in_templates_exist():
    assert set(PERSONA_TEMPLATES) == {"describe", "adopt", "roleplay"}


@pytest.mark.parametrize(
    ("template", "opening"),
    [
        ("describe", "You are a patient test teacher."),
        ("adopt", "Adopt the identity of a patient test teacher."),
        ("roleplay", "This conversation is a role-play. Your role: a patient test teacher."),
    ],
)
def test_each_template_opens_with_the_persona_description(teacher, template, opening):
    assert render_persona(teacher, template).startswith(opening)


@pytest.mark.parametrize("template", sorted(PERSONA_TEMPLATES))
def test_traits_style_and_statements_are_rendered(teacher, template):
    text = render_persona(teacher, template)
    assert "Your traits: patient, exact." in text
    assert "How you write: Answers in one short sentence." in text
    assert "- I teach arithmetic.\n- I have a cat named Euclid." in text


def test_a_bare_persona_renders_as_its_description_only():
    persona = Persona(name="bare", description="a plain assistant.")
    assert render_persona(persona) == "You are a plain assistant."


def test_demographics_and_metadata_are_never_sent_to_the_model(teacher):
    text = render_persona(teacher)
    assert "adult" not in text
    assert "kind" not in text


def test_an_unknown_template_is_refused(teacher):
    with pytest.raises(ValueError, match="unknown persona template"):
        render_persona(teacher, "whisper")


# -- placement -----------------------------------------------------------------------------------


async def prepare(pm, messages, model=None, **config):
    pipeline = PersonaPipeline(model or ScriptedModel(), plugin_manager=pm, **config)
    return await pipeline.prepare(messages)


@pytest.mark.parametrize("template", sorted(PERSONA_TEMPLATES))
async def test_the_configured_template_is_the_one_used(bare_manager, teacher, template):
    prepared = await prepare(bare_manager, QUESTION, persona=teacher, persona_template=template)
    assert prepared.system_prompt == render_persona(teacher, template)


async def test_the_persona_goes_into_a_system_message_at_the_head(bare_manager, teacher):
    history = [Message.user("Hi"), Message.assistant("Hello."), Message.user(QUESTION)]
    prepared = await prepare(bare_manager, history, persona=teacher)
    assert prepared.prompt[0] == Message.system(render_persona(teacher))
    assert prepared.prompt[1:] == history


async def test_the_persona_never_goes_into_a_user_message(bare_manager, teacher):
    history = [Message.user("Hi"), Message.assistant("Hello."), Message.user(QUESTION)]
    prepared = await prepare(bare_manager, history, persona=teacher, persona_template="roleplay")
    users = [m for m in prepared.prompt if m.role == "user"]
    assert users == [m for m in history if m.role == "user"]
    assert all(teacher.description not in m.content for m in prepared.prompt if m.role != "system")


async def test_with_an_existing_system_message_a_second_one_is_added_by_default(
    bare_manager, teacher
):
    history = [Message.system("Answer in French."), Message.user(QUESTION)]
    prepared = await prepare(bare_manager, history, persona=teacher)
    assert [m.role for m in prepared.prompt] == ["system", "system", "user"]
    assert prepared.prompt[0].content == render_persona(teacher)
    assert prepared.prompt[1] is history[0]


async def test_merge_system_messages_merges_the_persona_into_the_existing_one(
    bare_manager, teacher
):
    history = [
        Message(role="system", content="Answer in French.", name="app"),
        Message.user(QUESTION),
    ]
    prepared = await prepare(bare_manager, history, persona=teacher, merge_system_messages=True)
    assert len(prepared.prompt) == 2
    merged = prepared.prompt[0]
    assert merged.role == "system"
    assert merged.content == render_persona(teacher) + "\n\nAnswer in French."
    assert merged.name == "app"
    assert prepared.prompt[1] is history[1]


async def test_a_model_taking_one_system_message_gets_them_merged(bare_manager, teacher):
    model = ScriptedModel(supports_multiple_system_messages=False)
    history = [Message.system("Answer in French."), Message.user(QUESTION)]
    result = await PersonaPipeline(model, plugin_manager=bare_manager, persona=teacher).run(history)
    [sent] = model.calls
    assert [m.role for m in sent] == ["system", "user"]
    assert sent[0].content.startswith(render_persona(teacher))
    assert sent[0].content.endswith("Answer in French.")
    assert result.prompt == sent


async def test_an_explicit_setting_wins_over_what_the_model_says(bare_manager, teacher):
    model = ScriptedModel(supports_multiple_system_messages=False)
    history = [Message.system("Answer in French."), Message.user(QUESTION)]
    prepared = await prepare(
        bare_manager, history, model=model, persona=teacher, merge_system_messages=False
    )
    assert [m.role for m in prepared.prompt] == ["system", "system", "user"]


async def test_merging_without_a_leading_system_message_adds_one(bare_manager, teacher):
    history = [Message.user("Hi"), Message.system("late system note"), Message.user(QUESTION)]
    prepared = await prepare(bare_manager, history, persona=teacher, merge_system_messages=True)
    assert prepared.prompt[0] == Message.system(render_persona(teacher))
    assert prepared.prompt[1:] == history


async def test_the_callers_messages_are_never_changed(bare_manager, teacher):
    history = [Message.system("Answer in French."), Message.user(QUESTION)]
    snapshot = [m.model_copy() for m in history]
    ids = [id(m) for m in history]
    await PersonaPipeline(
        ScriptedModel(), plugin_manager=bare_manager, persona=teacher, merge_system_messages=True
    ).run(history)
    assert history == snapshot
    assert [id(m) for m in history] == ids


async def test_mapping_messages_are_left_as_the_caller_wrote_them(bare_manager, teacher):
    history = [{"role": "user", "content": QUESTION}]
    await prepare(bare_manager, history, persona=teacher)
    assert history == [{"role": "user", "content": QUESTION}]


# -- plugins on the injection hooks --------------------------------------------------------------


async def test_a_plugin_may_write_the_system_prompt(bare_manager, teacher):
    class Terse:
        @hookimpl
        def persona_system_prompt(self, persona):
            return f"Be {persona.name}."

    with registered(bare_manager, Terse()):
        prepared = await prepare(bare_manager, QUESTION, persona=teacher)
    assert prepared.prompt[0] == Message.system("Be test_teacher.")


async def test_a_plugin_may_place_the_persona_itself(bare_manager, teacher):
    class AtTheEnd:
        @hookimpl
        def inject_persona(self, messages, system_prompt):
            return [*messages, Message.system(system_prompt)]

    with registered(bare_manager, AtTheEnd()):
        prepared = await prepare(bare_manager, QUESTION, persona=teacher)
    assert [m.role for m in prepared.prompt] == ["user", "system"]


async def test_an_empty_system_prompt_means_nothing_is_injected(bare_manager, teacher):
    class Silent:
        @hookimpl
        def persona_system_prompt(self):
            return ""

    model = ScriptedModel()
    with registered(bare_manager, Silent()):
        result = await PersonaPipeline(model, plugin_manager=bare_manager, persona=teacher).run(
            QUESTION
        )
    assert result.system_prompt is None
    assert model.calls == [[Message.user(QUESTION)]]
