"""PipelineConfig: defaults, validation with errors naming the field, overrides, TOML files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from persona_plugins import (
    ConfigError,
    JudgeSettings,
    Persona,
    PersonaError,
    PersonaPipeline,
    PipelineConfig,
)
from persona_plugins.config import GENERATION_SETTINGS, check_generation_settings
from tests.core.doubles import ScriptedModel


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# -- defaults ------------------------------------------------------------------------------------


def test_the_defaults_answer_neutrally_with_nothing_extra_switched_on():
    config = PipelineConfig()
    assert config.persona is None
    assert config.persona_mode == "static"
    assert config.persona_template == "describe"
    assert config.merge_system_messages is None
    assert config.ensemble == "off"
    assert config.refine == "off"
    assert config.guard == "off"
    assert config.max_rounds == 1
    assert config.model_settings == {}
    assert config.timeout_s is None


def test_the_default_judge_retries_once_and_falls_back_to_the_neutral_answer():
    judge = PipelineConfig().judge
    assert judge == JudgeSettings(
        retries=1, fallback="neutral", certainty=False, min_certainty=None
    )


def test_the_default_refiners_and_detectors_are_the_built_in_ones():
    config = PipelineConfig()
    assert config.refiners == ["factuality", "persona", "coherence"]
    assert config.detectors == ["abstention", "stereotype", "toxicity", "persona_contradiction"]


def test_list_defaults_are_not_shared_between_configs():
    first, second = PipelineConfig(), PipelineConfig()
    first.refiners.append("extra")
    first.model_settings["max_tokens"] = 5
    assert second.refiners == ["factuality", "persona", "coherence"]
    assert second.model_settings == {}


# -- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"personna": "math_teacher"}, "'personna'"),
        ({"ensemble_mode": "jekyll_hyde"}, "'ensemble_mode'"),
        ({"judge": {"retry": 2}}, "'judge.retry'"),
    ],
)
def test_unknown_keys_are_config_errors_naming_the_field(overrides, field):
    with pytest.raises(ConfigError) as info:
        PipelineConfig.build(**overrides)
    assert field in str(info.value)
    assert "Extra inputs are not permitted" in str(info.value)


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("persona_mode", "dynamic", "'generated'"),
        ("persona_template", "pretend", "'roleplay'"),
        ("ensemble", "jekyll", "'jekyll_hyde'"),
        ("refine", "always", "'adaptive'"),
        ("guard", "strict", "'enforce'"),
    ],
)
def test_an_invalid_choice_is_a_config_error_listing_the_valid_ones(field, value, allowed):
    with pytest.raises(ConfigError) as info:
        PipelineConfig.build(**{field: value})
    message = str(info.value)
    assert f"'{field}'" in message
    assert allowed in message


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"max_rounds": 0}, "'max_rounds'"),
        ({"max_rounds": 11}, "'max_rounds'"),
        ({"timeout_s": 0}, "'timeout_s'"),
        ({"timeout_s": -1.5}, "'timeout_s'"),
        ({"judge": {"retries": -1}}, "'judge.retries'"),
        ({"judge": {"fallback": "coin_flip"}}, "'judge.fallback'"),
        ({"judge": {"min_certainty": 101}}, "'judge.min_certainty'"),
        ({"refiners": "factuality"}, "'refiners'"),
        ({"model_settings": ["max_tokens", 5]}, "'model_settings'"),
    ],
)
def test_out_of_range_and_mistyped_values_are_config_errors_naming_the_field(overrides, field):
    with pytest.raises(ConfigError, match=field):
        PipelineConfig.build(**overrides)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as info:
        PipelineConfig.build(ensemble="x", guard="y", max_rounds=0)
    message = str(info.value)
    for field in ("'ensemble'", "'guard'", "'max_rounds'"):
        assert field in message


def test_a_config_error_is_also_a_value_error():
    with pytest.raises(ValueError):
        PipelineConfig.build(guard="strict")


def test_assigning_an_invalid_value_to_a_config_is_rejected():
    config = PipelineConfig()
    with pytest.raises(ValueError, match="guard"):
        config.guard = "strict"  # type: ignore[assignment]


# -- strict values: no coercion, no infinity, and always a ConfigError --------------------------

#: Values pydantic's lax mode would quietly coerce (True -> 1, "5" -> 5.0) or accept (infinity).
NOT_COERCED = [
    ({"max_rounds": True}, "max_rounds", "got True (bool)"),
    ({"max_rounds": 2.0}, "max_rounds", "got 2.0 (float)"),
    ({"max_rounds": "3"}, "max_rounds", "got '3' (str)"),
    ({"timeout_s": "5"}, "timeout_s", "got '5' (str)"),
    ({"timeout_s": True}, "timeout_s", "got True (bool)"),
    ({"timeout_s": float("inf")}, "timeout_s", "got inf (float)"),
    ({"timeout_s": float("nan")}, "timeout_s", "got nan (float)"),
    ({"merge_system_messages": 1}, "merge_system_messages", "got 1 (int)"),
    ({"merge_system_messages": "yes"}, "merge_system_messages", "got 'yes' (str)"),
    ({"judge": {"retries": True}}, "judge.retries", "got True (bool)"),
    ({"judge": {"certainty": "yes"}}, "judge.certainty", "got 'yes' (str)"),
    ({"judge": {"min_certainty": 50.0}}, "judge.min_certainty", "got 50.0 (float)"),
]


@pytest.mark.parametrize(("values", "field", "got"), NOT_COERCED)
def test_a_value_of_the_wrong_type_is_refused_not_coerced(values, field, got):
    with pytest.raises(ConfigError) as info:
        PipelineConfig.build(**values)
    message = str(info.value)
    assert message.startswith("config: invalid configuration: ")
    assert f"'{field}'" in message and got in message
    assert ": write " in message, "the message says what to write instead"


@pytest.mark.parametrize(("values", "field", "got"), NOT_COERCED)
def test_constructing_a_config_directly_raises_config_error_not_pydantics(values, field, got):
    with pytest.raises(ConfigError) as info:
        PipelineConfig(**values)
    assert not isinstance(info.value, ValidationError)
    assert str(info.value).startswith("PipelineConfig(...): invalid configuration: ")
    assert f"'{field}'" in str(info.value) and got in str(info.value)
    with pytest.raises(ConfigError, match=re.escape(f"'{field}'")):
        PipelineConfig.model_validate(values)


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_rounds", True), ("timeout_s", float("inf")), ("guard", "strict"), ("judge", 3)],
)
def test_assigning_a_bad_value_raises_config_error_naming_the_field(field, value):
    config = PipelineConfig()
    with pytest.raises(ConfigError) as info:
        setattr(config, field, value)
    assert not isinstance(info.value, ValidationError)
    assert f"'{field}'" in str(info.value)
    assert getattr(config, field) == getattr(PipelineConfig(), field), "the old value is kept"


def test_judge_settings_built_directly_raise_config_error():
    with pytest.raises(ConfigError, match=r"^JudgeSettings\(\.\.\.\): .*'retries'.*got '2'"):
        JudgeSettings(retries="2")  # type: ignore[arg-type]


def test_a_whole_number_of_seconds_is_a_timeout():
    assert PipelineConfig(timeout_s=5).timeout_s == 5.0
    assert PipelineConfig.build({"judge": {"min_certainty": 70}}).judge.min_certainty == 70


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("max_rounds = true", "max_rounds"),
        ('timeout_s = "5"', "timeout_s"),
        ("timeout_s = inf", "timeout_s"),
        ("timeout_s = nan", "timeout_s"),
        ("merge_system_messages = 1", "merge_system_messages"),
    ],
)
def test_a_mistyped_value_in_a_config_file_names_the_file_and_field(tmp_path, line, field):
    path = write(tmp_path, "pipeline.toml", f"[persona_plugins]\n{line}\n")
    with pytest.raises(ConfigError) as info:
        PipelineConfig.from_toml(path)
    assert str(info.value).startswith(f"{path}: invalid configuration: '{field}': ")


@pytest.mark.parametrize(
    "text",
    [
        "x = " + "[" * 5000 + "]" * 5000,
        "model_settings = {extra = " + "{a = " * 3000 + "1" + "}" * 3001,
    ],
    ids=["arrays", "inline-tables"],
)
def test_a_config_file_nested_too_deeply_is_a_config_error_not_a_recursion_error(tmp_path, text):
    path = write(tmp_path, "deep.toml", text + "\n")
    with pytest.raises(ConfigError) as info:
        PipelineConfig.from_toml(path)
    message = str(info.value)
    assert message.startswith(f"{path}: invalid TOML: ")
    assert "nested too deeply to read; flatten the configuration" in message


# -- build(config, **overrides) ------------------------------------------------------------------


def test_build_with_nothing_gives_the_defaults():
    assert PipelineConfig.build() == PipelineConfig()
    assert PipelineConfig.build(None) == PipelineConfig()


def test_build_from_a_mapping():
    config = PipelineConfig.build({"ensemble": "jekyll_hyde", "judge": {"retries": 3}})
    assert config.ensemble == "jekyll_hyde"
    assert config.judge.retries == 3


def test_overrides_win_over_the_config_and_keep_its_other_settings():
    base = PipelineConfig(ensemble="jekyll_hyde", guard="monitor", max_rounds=2)
    config = PipelineConfig.build(base, guard="enforce")
    assert (config.ensemble, config.guard, config.max_rounds) == ("jekyll_hyde", "enforce", 2)


def test_build_never_changes_the_config_it_starts_from():
    base = PipelineConfig(guard="monitor")
    PipelineConfig.build(base, guard="enforce", refiners=["coherence"])
    assert base.guard == "monitor"
    assert base.refiners == ["factuality", "persona", "coherence"]


def test_values_assigned_after_construction_are_kept_by_build():
    base = PipelineConfig()
    base.guard = "monitor"
    assert PipelineConfig.build(base).guard == "monitor"


def test_overrides_on_a_mapping_win():
    config = PipelineConfig.build({"guard": "monitor"}, guard="off")
    assert config.guard == "off"


@pytest.mark.parametrize("bad", ["guard=monitor", 42, ["guard"]])
def test_build_from_something_else_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="PipelineConfig, a dict or None"):
        PipelineConfig.build(bad)


# -- the persona field ---------------------------------------------------------------------------


def test_a_persona_may_be_given_inline_as_a_mapping():
    config = PipelineConfig(persona={"name": "inline", "description": "an inline persona"})
    assert config.persona == Persona(name="inline", description="an inline persona")


def test_a_bad_inline_persona_is_a_config_error_naming_the_persona_field():
    with pytest.raises(ConfigError) as info:
        PipelineConfig.build(persona={"name": "inline"})
    message = str(info.value)
    assert "'persona'" in message
    assert "description" in message


def test_a_persona_path_is_kept_as_text_to_be_resolved_by_the_pipeline(tmp_path):
    config = PipelineConfig(persona=tmp_path / "teacher.yaml")
    assert config.persona == str(tmp_path / "teacher.yaml")


def test_a_persona_object_is_kept_as_it_is(teacher):
    assert PipelineConfig(persona=teacher).persona is teacher


# -- config files --------------------------------------------------------------------------------


def test_from_toml_reads_the_top_level(tmp_path):
    path = write(
        tmp_path,
        "persona.toml",
        'persona = "math_teacher"\nensemble = "jekyll_hyde"\n\n[judge]\nretries = 2\n',
    )
    config = PipelineConfig.from_toml(path)
    assert (config.persona, config.ensemble, config.judge.retries) == (
        "math_teacher",
        "jekyll_hyde",
        2,
    )


def test_from_toml_reads_a_persona_plugins_table(tmp_path):
    path = write(
        tmp_path,
        "app.toml",
        '[server]\nport = 8080\n\n[persona_plugins]\nguard = "monitor"\n'
        '\n[persona_plugins.judge]\nfallback = "persona"\n',
    )
    config = PipelineConfig.from_toml(str(path))
    assert config.guard == "monitor"
    assert config.judge.fallback == "persona"


def test_from_toml_reads_the_tool_table_of_a_pyproject(tmp_path):
    path = write(
        tmp_path,
        "pyproject.toml",
        '[project]\nname = "my-app"\n\n[tool.ruff]\nline-length = 100\n\n'
        '[tool.persona_plugins]\nrefine = "adaptive"\nmax_rounds = 3\n',
    )
    config = PipelineConfig.from_toml(path)
    assert (config.refine, config.max_rounds) == ("adaptive", 3)


def test_from_toml_accepts_an_inline_persona_table(tmp_path):
    path = write(
        tmp_path,
        "inline.toml",
        '[persona]\nname = "keeper"\ndescription = "a lighthouse keeper"\ntraits = ["steady"]\n',
    )
    config = PipelineConfig.from_toml(path)
    assert config.persona == Persona(
        name="keeper", description="a lighthouse keeper", traits=["steady"]
    )


def test_a_missing_config_file_is_a_config_error_naming_it(tmp_path):
    path = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError) as info:
        PipelineConfig.from_toml(path)
    assert str(path) in str(info.value)
    assert "not found" in str(info.value)


def test_invalid_toml_is_a_config_error_naming_the_file_and_line(tmp_path):
    path = write(tmp_path, "broken.toml", 'persona = "math_teacher"\nensemble = \n')
    with pytest.raises(ConfigError) as info:
        PipelineConfig.from_toml(path)
    message = str(info.value)
    assert str(path) in message
    assert "invalid TOML" in message
    assert "line 2" in message


def test_a_config_file_that_is_not_utf8_is_a_config_error_naming_it(tmp_path):
    path = write(tmp_path, "latin1.toml", 'persona = "café"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=str(path)):
        PipelineConfig.from_toml(path)


def test_a_directory_given_as_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=str(tmp_path)):
        PipelineConfig.from_toml(tmp_path)


def test_an_invalid_value_in_a_config_file_names_the_file_and_the_field(tmp_path):
    path = write(tmp_path, "bad.toml", '[persona_plugins]\nguard = "strict"\n')
    with pytest.raises(ConfigError) as info:
        PipelineConfig.from_toml(path)
    assert str(path) in str(info.value)
    assert "'guard'" in str(info.value)


def test_an_unknown_key_in_a_config_file_names_the_file_and_the_key(tmp_path):
    path = write(tmp_path, "typo.toml", 'ensemble = "jekyll_hyde"\ngaurd = "monitor"\n')
    with pytest.raises(ConfigError) as info:
        PipelineConfig.from_toml(path)
    assert str(path) in str(info.value)
    assert "'gaurd'" in str(info.value)


# -- generation settings are checked by name, wherever they enter --------------------------------


@pytest.mark.parametrize(
    ("typo", "closest"),
    [
        ("max_token", "max_tokens"),
        ("temprature", "temperature"),
        ("repetition_penalty", "repeat_penalty"),
        ("Top_P", "top_p"),
    ],
)
def test_a_misspelt_model_setting_is_a_config_error_naming_it_and_the_closest_name(typo, closest):
    with pytest.raises(ConfigError) as info:
        PipelineConfig.build(model_settings={typo: 1})
    message = str(info.value)
    assert "'model_settings'" in message
    assert f"unknown generation setting {typo!r} (did you mean {closest!r}?)" in message


def test_a_model_setting_with_no_close_name_lists_the_known_ones_and_extra():
    with pytest.raises(ConfigError) as info:
        PipelineConfig.build(model_settings={"num_predict": 20})
    message = str(info.value)
    assert "'num_predict'" in message and "did you mean" not in message
    assert "max_tokens, temperature" in message and "'extra'" in message


def test_every_unknown_model_setting_is_reported_at_once():
    with pytest.raises(ConfigError) as info:
        PipelineConfig.build(model_settings={"max_token": 20, "temprature": 0, "top_p": 0.9})
    message = str(info.value)
    assert "'max_token'" in message and "'temprature'" in message
    assert "'top_p'" not in message.split("the known settings")[0]


def test_every_known_generation_setting_and_an_extra_table_are_accepted():
    settings = {name: 1 for name in GENERATION_SETTINGS}
    settings["extra"] = {"mirostat_mode": 2, "chat_template_kwargs": {"thinking": False}}
    config = PipelineConfig.build(model_settings=settings)
    assert config.model_settings == settings


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ([1, 2], "'extra' must be a table of server-specific settings, not list"),
        ({"max_tokens": 5}, "'extra.max_tokens' is a known setting: set 'max_tokens' directly"),
    ],
)
def test_a_bad_extra_table_is_a_config_error(extra, expected):
    with pytest.raises(ConfigError, match=re.escape(expected)):
        PipelineConfig.build(model_settings={"extra": extra})


def test_model_settings_are_checked_on_construction_and_assignment_too():
    with pytest.raises(ValueError, match="did you mean 'max_tokens'"):
        PipelineConfig(model_settings={"max_token": 20})
    config = PipelineConfig()
    with pytest.raises(ValueError, match="did you mean 'seed'"):
        config.model_settings = {"sed": 1}


@pytest.mark.parametrize(
    ("text", "table"),
    [
        ("[model_settings]\nmax_token = 20\n", "[model_settings]"),
        (
            "[persona_plugins.model_settings]\nmax_token = 20\n",
            "[persona_plugins.model_settings]",
        ),
        (
            "[tool.persona_plugins]\nguard = 'monitor'\n"
            "[tool.persona_plugins.model_settings]\nmax_token = 20\n",
            "[tool.persona_plugins.model_settings]",
        ),
        ("model_settings = {max_token = 20}\n", "[model_settings]"),
    ],
)
def test_a_misspelt_model_setting_in_a_file_names_the_file_the_table_and_the_key(
    tmp_path, text, table
):
    path = write(tmp_path, "pipeline.toml", text)
    with pytest.raises(ConfigError) as info:
        PipelineConfig.from_toml(path)
    message = str(info.value)
    assert message.startswith(f"{path}: invalid configuration: {table}: ")
    assert "unknown generation setting 'max_token' (did you mean 'max_tokens'?)" in message


def test_an_extra_table_in_a_file_is_kept_as_it_is(tmp_path):
    path = write(
        tmp_path,
        "pipeline.toml",
        "[model_settings]\nmax_tokens = 20\n[model_settings.extra]\nmirostat_mode = 2\n",
    )
    config = PipelineConfig.from_toml(path)
    assert config.model_settings == {"max_tokens": 20, "extra": {"mirostat_mode": 2}}


def test_check_generation_settings_returns_a_copy_and_names_where_they_came_from():
    given = {"max_tokens": 5, "extra": {"mirostat_mode": 2}}
    checked = check_generation_settings(given, where="MyModel(generation=...)")
    assert checked == given
    assert checked is not given and checked["extra"] is not given["extra"]
    assert check_generation_settings(None, where="x") == {}
    with pytest.raises(ConfigError, match=r"^MyModel\(generation=\.\.\.\): unknown generation"):
        check_generation_settings({"max_token": 5}, where="MyModel(generation=...)")
    with pytest.raises(ConfigError, match="must be a mapping"):
        check_generation_settings([("max_tokens", 5)], where="x")  # type: ignore[arg-type]


def test_a_pipeline_with_a_misspelt_model_setting_fails_at_construction(bare_manager):
    with pytest.raises(ConfigError, match="did you mean 'max_tokens'"):
        PersonaPipeline(
            ScriptedModel(), plugin_manager=bare_manager, model_settings={"max_token": 2}
        )


def test_the_embedded_model_checks_its_generation_settings_when_built(tmp_path):
    from persona_plugins.integrations.llama_cpp import LlamaCppChatModel

    with pytest.raises(ConfigError) as info:
        LlamaCppChatModel(tmp_path / "m.gguf", generation={"max_token": 20})
    assert str(info.value).startswith("LlamaCppChatModel(generation=...): ")
    assert "did you mean 'max_tokens'" in str(info.value)


def test_the_embedded_model_checks_the_settings_of_each_call(tmp_path):
    from persona_plugins.integrations.llama_cpp import LlamaCppChatModel

    model = LlamaCppChatModel(tmp_path / "m.gguf", generation={"max_tokens": 20})
    assert model._settings({"temperature": 0.5, "seed": None})["temperature"] == 0.5
    with pytest.raises(ConfigError, match="did you mean 'temperature'"):
        model._settings({"temprature": 0.5})


def test_the_embedded_model_passes_extra_arguments_it_takes_and_refuses_others(tmp_path):
    pytest.importorskip("llama_cpp")
    from persona_plugins.integrations.llama_cpp import LlamaCppChatModel

    model = LlamaCppChatModel(
        tmp_path / "m.gguf", generation={"max_tokens": 20, "extra": {"mirostat_mode": 2}}
    )
    params = model._settings({"extra": {"typical_p": 0.9}})
    assert params["mirostat_mode"] == 2 and params["typical_p"] == 0.9
    assert params["max_tokens"] == 20 and "extra" not in params
    for refused in ("num_predict", "stream", "messages"):
        with pytest.raises(ConfigError, match=f"'{refused}' are not arguments"):
            model._settings({"extra": {refused: 1}})


@pytest.mark.model
async def test_the_embedded_model_answers_with_an_extra_argument(embedded_model):
    from persona_plugins import Message

    completion = await embedded_model.complete(
        [Message.user("Say hello.")], max_tokens=8, extra={"typical_p": 0.9, "mirostat_mode": 0}
    )

    assert completion.text and 0 < completion.usage.output_tokens <= 8


# -- the pipeline takes the same config ----------------------------------------------------------


def test_a_pipeline_takes_a_config_a_mapping_or_keyword_overrides(bare_manager):
    model = ScriptedModel()
    from_object = PersonaPipeline(
        model, PipelineConfig(guard="monitor"), plugin_manager=bare_manager
    )
    from_mapping = PersonaPipeline(model, {"guard": "monitor"}, plugin_manager=bare_manager)
    from_keywords = PersonaPipeline(model, plugin_manager=bare_manager, guard="monitor")
    assert from_object.config.guard == from_mapping.config.guard == from_keywords.config.guard
    assert from_object.config.guard == "monitor"


def test_a_pipeline_resolves_the_configured_persona_name(bare_manager):
    pipeline = PersonaPipeline(ScriptedModel(), plugin_manager=bare_manager, persona="Math-Teacher")
    assert isinstance(pipeline.config.persona, Persona)
    assert pipeline.config.persona.name == "math_teacher"


def test_a_pipeline_resolves_a_configured_persona_file(tmp_path, bare_manager):
    path = write(tmp_path, "keeper.json", '{"name": "keeper", "description": "a keeper"}')
    config = PipelineConfig(persona=path)
    pipeline = PersonaPipeline(ScriptedModel(), config, plugin_manager=bare_manager)
    assert pipeline.config.persona == Persona(name="keeper", description="a keeper")


def test_a_pipeline_with_an_unknown_persona_fails_at_construction(bare_manager):
    with pytest.raises(PersonaError, match="Did you mean: pirate_captain"):
        PersonaPipeline(ScriptedModel(), plugin_manager=bare_manager, persona="pirate_captian")


def test_a_pipeline_with_an_invalid_override_is_a_config_error(bare_manager):
    with pytest.raises(ConfigError, match="'ensemble'"):
        PersonaPipeline(ScriptedModel(), plugin_manager=bare_manager, ensemble="both")


@pytest.mark.parametrize("not_a_model", [object(), "gpt-4o", None])
def test_a_pipeline_needs_a_chat_model(bare_manager, not_a_model):
    with pytest.raises(ConfigError, match="model must be a ChatModel"):
        PersonaPipeline(not_a_model, plugin_manager=bare_manager)


def test_the_pipeline_does_not_change_the_config_it_was_given(bare_manager):
    config = PipelineConfig(persona="math_teacher")
    PersonaPipeline(ScriptedModel(), config, plugin_manager=bare_manager, guard="monitor")
    assert config.persona == "math_teacher"
    assert config.guard == "off"
