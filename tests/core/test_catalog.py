"""The built-in persona catalog, and personas that plugins add through ``register_personas``."""

from __future__ import annotations

import pytest

from persona_plugins import ConfigError, Persona, PersonaPipeline, hookimpl
from persona_plugins.injection import PERSONA_TEMPLATES, render_persona
from persona_plugins.personas import builtin_personas
from tests.core.doubles import FixedPersona, ScriptedModel, registered

EXPERTS = ["math_teacher", "physician", "software_engineer", "lawyer", "historian"]
STYLES = ["pirate_captain", "children_tutor"]

#: The 16 socio-demographic personas of "Bias Runs Deep" (see ../shared/data/README.md): catalog
#: name -> (the protected attribute the guardrails watch, the identity phrase of the paper).
AUDIT = {
    "physically_disabled": ("disability", "a physically-disabled person"),
    "able_bodied": ("disability", "an able-bodied person"),
    "atheist": ("religion", "an atheist person"),
    "religious": ("religion", "a religious person"),
    "jewish": ("religion", "a Jewish person"),
    "christian": ("religion", "a Christian person"),
    "asian": ("race", "an Asian person"),
    "hispanic": ("race", "a Hispanic person"),
    "african": ("race", "an African person"),
    "caucasian": ("race", "a Caucasian person"),
    "lifelong_democrat": ("politics", "a lifelong Democrat"),
    "lifelong_republican": ("politics", "a lifelong Republican"),
    "trump_supporter": ("politics", "a Trump supporter"),
    "obama_supporter": ("politics", "an Obama supporter"),
    "man": ("gender", "a man"),
    "woman": ("gender", "a woman"),
}
BASELINES = {"average_human": "an average human", "human": "a human"}


@pytest.fixture
def catalog(plugin_manager) -> dict[str, Persona]:
    """The catalog exactly as a pipeline sees it."""
    return PersonaPipeline(ScriptedModel(), plugin_manager=plugin_manager).personas


def test_the_catalog_holds_at_least_twelve_personas(catalog):
    assert len(catalog) >= 12


def test_catalog_names_are_unique_so_no_builtin_persona_silently_shadows_another():
    names = [p.name for p in builtin_personas()]
    assert len(names) == len(set(names))


def test_the_pipeline_catalog_is_the_builtin_catalog(catalog):
    assert {p.name: p for p in builtin_personas()} == catalog


@pytest.mark.parametrize("name", EXPERTS)
def test_subject_experts_are_in_the_catalog_with_traits_style_and_statements(catalog, name):
    persona = catalog[name]
    assert persona.description
    assert persona.traits
    assert persona.style
    assert persona.statements


@pytest.mark.parametrize("name", STYLES)
def test_speaking_styles_are_in_the_catalog(catalog, name):
    persona = catalog[name]
    assert persona.description
    assert persona.style


@pytest.mark.parametrize("name", sorted(AUDIT))
def test_audit_personas_carry_the_demographics_the_guardrails_watch(catalog, name):
    attribute, phrase = AUDIT[name]
    persona = catalog[name]
    assert persona.description == phrase
    assert attribute in persona.demographics
    assert persona.demographics[attribute]


def test_audit_personas_cover_five_groups_in_pairs_or_more(catalog):
    groups: dict[str, list[str]] = {}
    for name, (attribute, _) in AUDIT.items():
        groups.setdefault(attribute, []).append(catalog[name].demographics[attribute])
    assert sorted(groups) == ["disability", "gender", "politics", "race", "religion"]
    for values in groups.values():
        assert len(set(values)) == len(values) >= 2


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baselines_are_in_the_catalog_without_demographics(catalog, name):
    persona = catalog[name]
    assert persona.description == BASELINES[name]
    assert persona.demographics == {}


@pytest.mark.parametrize("template", sorted(PERSONA_TEMPLATES))
def test_every_catalog_persona_renders_with_every_template(catalog, template):
    for persona in catalog.values():
        text = render_persona(persona, template)
        assert persona.description.rstrip(".") in text


# -- personas from plugins -----------------------------------------------------------------------


async def test_a_persona_registered_by_a_plugin_can_be_used_by_name(plugin_manager):
    sailor = Persona(name="lighthouse_keeper", description="a lighthouse keeper on a remote rock")
    model = ScriptedModel("Aye, four.")
    with registered(plugin_manager, FixedPersona(sailor)):
        pipeline = PersonaPipeline(
            model, plugin_manager=plugin_manager, persona="lighthouse_keeper"
        )
        result = await pipeline.run("What is 2 + 2?")
    assert pipeline.personas["lighthouse_keeper"] == sailor
    assert result.persona == sailor
    assert result.text == "Aye, four."
    [call] = model.calls
    assert call[0].role == "system"
    assert "a lighthouse keeper on a remote rock" in call[0].content


def test_plugin_personas_are_added_to_the_builtin_ones(plugin_manager):
    extra = Persona(name="beekeeper", description="a beekeeper")
    with registered(plugin_manager, FixedPersona(extra)):
        catalog = PersonaPipeline(ScriptedModel(), plugin_manager=plugin_manager).personas
    assert "beekeeper" in catalog
    assert {p.name for p in builtin_personas()} <= set(catalog)


def test_an_unregistered_plugin_persona_is_no_longer_available(plugin_manager):
    extra = Persona(name="beekeeper", description="a beekeeper")
    with registered(plugin_manager, FixedPersona(extra)):
        pass
    catalog = PersonaPipeline(ScriptedModel(), plugin_manager=plugin_manager).personas
    assert "beekeeper" not in catalog


def test_a_plugin_persona_name_is_normalised_like_a_builtin_one(plugin_manager):
    extra = Persona(name="bee_keeper", description="a beekeeper")
    with registered(plugin_manager, FixedPersona(extra)):
        pipeline = PersonaPipeline(
            ScriptedModel(), plugin_manager=plugin_manager, persona="Bee-Keeper"
        )
    assert pipeline.config.persona == extra


def test_a_plugin_persona_replaces_a_builtin_persona_of_the_same_name(plugin_manager):
    own = Persona(name="math_teacher", description="my own kind of math teacher")
    with registered(plugin_manager, FixedPersona(own)):
        pipeline = PersonaPipeline(ScriptedModel(), plugin_manager=plugin_manager)
    assert pipeline.personas["math_teacher"] == own


def test_registering_something_that_is_not_a_persona_is_a_config_error(plugin_manager):
    class Broken:
        @hookimpl
        def register_personas(self, register):
            register({"name": "dict_persona", "description": "not a Persona object"})

    with registered(plugin_manager, Broken()), pytest.raises(ConfigError, match="takes a Persona"):
        PersonaPipeline(ScriptedModel(), plugin_manager=plugin_manager)
