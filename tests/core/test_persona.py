"""Persona: validation, reading persona files, and resolving a persona given by name or path."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from persona_plugins import Persona, PersonaError, resolve_persona
from persona_plugins.personas import builtin_personas

VALID = {
    "name": "night_nurse",
    "description": "a night-shift nurse on a busy ward",
    "traits": ["calm", "practical"],
    "style": "Short, kind sentences.",
    "statements": ["I work nights."],
    "demographics": {"occupation": "nurse"},
    "metadata": {"source": "test"},
}

YAML_TEXT = """\
name: night_nurse
description: a night-shift nurse on a busy ward
traits: [calm, practical]
style: Short, kind sentences.
statements:
  - I work nights.
demographics: {occupation: nurse}
metadata: {source: test}
"""

TOML_TEXT = """\
name = "night_nurse"
description = "a night-shift nurse on a busy ward"
traits = ["calm", "practical"]
style = "Short, kind sentences."
statements = ["I work nights."]

[demographics]
occupation = "nurse"

[metadata]
source = "test"
"""

FILE_TEXTS = {
    ".yaml": YAML_TEXT,
    ".yml": YAML_TEXT,
    ".json": json.dumps(VALID, indent=2),
    ".toml": TOML_TEXT,
}


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def read_error(path: Path) -> PersonaError:
    with pytest.raises(PersonaError) as info:
        Persona.from_file(path)
    return info.value


# -- the Persona type ----------------------------------------------------------------------------


def test_a_persona_keeps_every_field_it_is_given():
    persona = Persona(**VALID)
    assert persona.model_dump() == VALID


def test_only_name_and_description_are_required():
    persona = Persona(name="x", description="someone")
    assert (persona.traits, persona.style, persona.statements) == ([], None, [])
    assert (persona.demographics, persona.metadata) == ({}, {})


@pytest.mark.parametrize("missing", ["name", "description"])
def test_a_persona_without_a_required_field_is_rejected(missing):
    data = {k: v for k, v in VALID.items() if k != missing}
    with pytest.raises(ValidationError, match=missing):
        Persona(**data)


def test_unknown_persona_fields_are_rejected_so_typos_never_pass_silently():
    with pytest.raises(ValidationError, match="trait"):
        Persona(name="x", description="y", trait=["typo"])


def test_whitespace_around_text_and_traits_is_stripped():
    persona = Persona(name="  x  ", description=" someone ", traits=[" bold "], statements=[" a "])
    assert (persona.name, persona.description) == ("x", "someone")
    assert (persona.traits, persona.statements) == (["bold"], ["a"])


@pytest.mark.parametrize("field", ["traits", "statements"])
@pytest.mark.parametrize("empty", ["", "   ", "\n"])
def test_empty_traits_and_statements_are_rejected(field, empty):
    with pytest.raises(ValidationError, match="must not contain empty strings"):
        Persona(name="x", description="y", **{field: ["fine", empty]})


@pytest.mark.parametrize(
    "name",
    ["", "-leading-dash", "_leading_underscore", "has/slash", "semi;colon", "a" * 81, "new\nline"],
)
def test_bad_names_are_rejected(name):
    with pytest.raises(ValidationError):
        Persona(name=name, description="someone")


@pytest.mark.parametrize("name", ["x", "math_teacher", "Dr. Jones", "agent-007", "a" * 80])
def test_ordinary_names_are_accepted(name):
    assert Persona(name=name, description="someone").name == name


def test_an_empty_description_is_rejected():
    with pytest.raises(ValidationError, match="description"):
        Persona(name="x", description="   ")


def test_personas_are_immutable():
    persona = Persona(name="x", description="someone")
    with pytest.raises(ValidationError):
        persona.name = "y"


# -- reading persona files -----------------------------------------------------------------------


@pytest.mark.parametrize("suffix", sorted(FILE_TEXTS))
def test_a_persona_file_in_each_format_reads_to_the_same_persona(tmp_path, suffix):
    path = write(tmp_path, f"nurse{suffix}", FILE_TEXTS[suffix])
    assert Persona.from_file(path) == Persona(**VALID)


def test_a_persona_file_path_may_be_given_as_a_string(tmp_path):
    path = write(tmp_path, "nurse.yaml", YAML_TEXT)
    assert Persona.from_file(str(path)).name == "night_nurse"


def test_the_suffix_is_matched_case_insensitively(tmp_path):
    path = write(tmp_path, "NURSE.YAML", YAML_TEXT)
    assert Persona.from_file(path).name == "night_nurse"


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    path = write(tmp_path, "nurse.json", b"\xef\xbb\xbf" + json.dumps(VALID).encode())
    assert Persona.from_file(path).name == "night_nurse"


def test_non_ascii_text_is_read_as_utf8(tmp_path):
    data = {**VALID, "description": "une infirmière de nuit, très calme"}
    path = write(tmp_path, "nurse.json", json.dumps(data, ensure_ascii=False))
    assert Persona.from_file(path).description == "une infirmière de nuit, très calme"


@pytest.mark.parametrize(
    ("suffix", "content"),
    [
        (".yaml", "persona:\n  name: night_nurse\n  description: a night-shift nurse\n"),
        (".json", '{"persona": {"name": "night_nurse", "description": "a night-shift nurse"}}'),
        (".toml", '[persona]\nname = "night_nurse"\ndescription = "a night-shift nurse"\n'),
    ],
)
def test_the_nested_persona_form_is_accepted(tmp_path, suffix, content):
    persona = Persona.from_file(write(tmp_path, f"nested{suffix}", content))
    assert (persona.name, persona.description) == ("night_nurse", "a night-shift nurse")


def test_a_missing_file_is_named_in_the_error(tmp_path):
    path = tmp_path / "nobody.yaml"
    error = read_error(path)
    assert str(path) in str(error)
    assert "not found" in str(error)
    assert error.source == str(path)


def test_a_directory_is_not_read_as_a_persona(tmp_path):
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    assert str(folder) in str(read_error(folder))


@pytest.mark.parametrize("name", ["nurse.txt", "nurse.yaml.bak", "nurse"])
def test_an_unknown_suffix_is_rejected_naming_the_file_and_the_accepted_suffixes(tmp_path, name):
    path = write(tmp_path, name, YAML_TEXT)
    message = str(read_error(path))
    assert str(path) in message
    assert "unsupported file type" in message
    for suffix in (".yaml", ".json", ".toml"):
        assert suffix in message


@pytest.mark.parametrize(
    ("name", "content", "line"),
    [
        ("bad.yaml", "name: x\ndescription: y\ntraits: [a, b\nstyle: z\n", 4),
        ("bad.yml", "name: x\n  description: wrongly indented\n", 2),
        ("bad.yaml", "name: x\ndescription: y\nstyle: 'unterminated\n", 4),
        ("bad.json", '{\n  "name": "x",\n  "description": \n}\n', 4),
        ("bad.json", '{\n  "name": "x"\n  "description": "y"\n}\n', 3),
        ("bad.toml", 'name = "x"\ndescription = \n', 2),
        ("bad.toml", 'name = "x"\ndescription = "y"\nname = "again"\n', 3),
    ],
)
def test_a_syntax_error_names_the_file_and_the_line(tmp_path, name, content, line):
    path = write(tmp_path, name, content)
    message = str(read_error(path))
    assert str(path) in message
    assert f"line {line}" in message
    assert "invalid" in message


def test_yaml_tags_that_would_run_code_are_refused(tmp_path):
    path = write(tmp_path, "evil.yaml", "!!python/object/apply:os.system ['echo pwned']\n")
    message = str(read_error(path))
    assert str(path) in message
    assert "line 1" in message


@pytest.mark.parametrize("suffix", [".yaml", ".json", ".toml"])
def test_a_missing_required_field_is_named(tmp_path, suffix):
    data = {"name": "x", "traits": ["calm"]}
    content = {
        ".yaml": yaml.safe_dump(data),
        ".json": json.dumps(data),
        ".toml": 'name = "x"\ntraits = ["calm"]\n',
    }[suffix]
    path = write(tmp_path, f"partial{suffix}", content)
    error = read_error(path)
    assert str(path) in str(error)
    assert "field 'description'" in str(error)
    assert error.location == "field 'description'"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": 123, "description": "y"}, "name"),
        ({"name": "x", "description": ["a", "list"]}, "description"),
        ({"name": "x", "description": "y", "traits": "calm"}, "traits"),
        ({"name": "x", "description": "y", "statements": [1, 2]}, "statements.0"),
        ({"name": "x", "description": "y", "demographics": {"age": 40}}, "demographics.age"),
        ({"name": "x", "description": "y", "style": {"a": 1}}, "style"),
        ({"name": "x", "description": "y", "metadata": "free text"}, "metadata"),
    ],
)
def test_a_field_of_the_wrong_type_is_named(tmp_path, data, field):
    path = write(tmp_path, "typed.json", json.dumps(data))
    error = read_error(path)
    assert str(path) in str(error)
    assert f"field '{field}'" in str(error)


def test_an_empty_trait_in_a_file_is_named(tmp_path):
    path = write(tmp_path, "empty.yaml", "name: x\ndescription: y\ntraits: [calm, '  ']\n")
    message = str(read_error(path))
    assert str(path) in message
    assert "field 'traits'" in message
    assert "empty" in message


def test_a_bad_name_in_a_file_is_named(tmp_path):
    path = write(tmp_path, "badname.toml", 'name = "../../etc/passwd"\ndescription = "y"\n')
    message = str(read_error(path))
    assert str(path) in message
    assert "field 'name'" in message


def test_an_unknown_field_in_a_file_is_named(tmp_path):
    path = write(tmp_path, "typo.yaml", "name: x\ndescription: y\ntrait: [calm]\n")
    message = str(read_error(path))
    assert "field 'trait'" in message


def test_an_unknown_field_names_the_closest_known_field(tmp_path):
    path = write(tmp_path, "typo.yaml", "name: x\ndescription: y\ntrait: [calm]\n")
    assert read_error(path).problems == [
        f"{path}: field 'trait': unknown field (did you mean 'traits'?)"
    ]
    path = write(tmp_path, "odd.yaml", "name: x\ndescription: y\nzzz: 1\n")
    assert "the fields are name, description, traits" in str(read_error(path))


def test_every_problem_of_a_file_is_kept_one_line_each(tmp_path):
    path = write(
        tmp_path,
        "many.json",
        json.dumps({"traits": "calm", "style": ["x"], "mood": "grumpy"}),
    )
    error = read_error(path)
    assert error.problems == [
        f"{path}: field 'name': Field required",
        f"{path}: field 'description': Field required",
        f"{path}: field 'traits': Input should be a valid list",
        f"{path}: field 'style': Input should be a valid string",
        f"{path}: field 'mood': unknown field (the fields are name, description, traits, style, "
        "statements, demographics, metadata)",
    ]
    assert all("\n" not in line for line in error.problems)
    # The message starts with the first problem and goes on, on the same line, with the others.
    message = str(error)
    assert message.startswith(error.problems[0] + "; ")
    for field in ("description", "traits", "style", "mood"):
        assert f"field '{field}'" in message
    assert "\n" not in message
    assert error.source == str(path) and error.location == "field 'name'"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("missing.yaml", None),
        ("broken.json", '{"name": "x",'),
        ("list.yaml", "- a\n- b\n"),
    ],
)
def test_a_file_that_cannot_be_read_as_a_mapping_has_exactly_one_problem(tmp_path, name, content):
    path = tmp_path / name if content is None else write(tmp_path, name, content)
    error = read_error(path)
    assert error.problems == [str(error)]
    assert error.problems[0].startswith(f"{path}: ")


def test_bytes_that_are_not_utf8_are_rejected_naming_the_file_and_offset(tmp_path):
    content = "name: x\ndescription: café\n".encode("latin-1")
    path = write(tmp_path, "latin1.yaml", content)
    message = str(read_error(path))
    assert str(path) in message
    assert "UTF-8" in message
    offset = content.index("é".encode("latin-1"))
    assert f"offset {offset}" in message


def test_a_too_large_file_is_rejected_before_it_is_parsed(tmp_path):
    padding = "# " + "x" * 1_000_000 + "\n"
    path = write(tmp_path, "huge.yaml", YAML_TEXT + padding)
    message = str(read_error(path))
    assert str(path) in message
    assert "at most" in message


@pytest.mark.parametrize(
    ("name", "content", "got"),
    [
        ("list.yaml", "- name: x\n- description: y\n", "list"),
        ("scalar.yaml", "just some text\n", "str"),
        ("empty.yaml", "", "NoneType"),
        ("number.json", "42", "int"),
        ("list.json", '[{"name": "x", "description": "y"}]', "list"),
        ("null.json", "null", "NoneType"),
    ],
)
def test_a_file_whose_top_level_is_not_a_mapping_is_rejected(tmp_path, name, content, got):
    path = write(tmp_path, name, content)
    message = str(read_error(path))
    assert str(path) in message
    assert "expected a mapping" in message
    assert got in message


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("deep.yaml", "[" * 5000),
        ("deep.json", "[" * 100_000),
        ("deep.toml", "a = " + "[" * 100_000),
        ("deep_map.json", '{"a":' * 50_000),
    ],
)
def test_pathologically_deep_nesting_is_a_persona_error_not_a_crash(tmp_path, name, content):
    path = write(tmp_path, name, content)
    assert str(path) in str(read_error(path))


def test_from_mapping_reports_problems_as_persona_errors_with_the_source():
    with pytest.raises(PersonaError, match=r"^catalog\[3\]: field 'description'"):
        Persona.from_mapping({"name": "x"}, source="catalog[3]")


# -- fuzzing: only PersonaError ever escapes from from_file ---------------------------------------

SUFFIXES = (".yaml", ".yml", ".json", ".toml")
FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def assert_only_persona_errors(path: Path) -> None:
    """Reading the file either gives a Persona or raises PersonaError naming the file."""
    try:
        persona = Persona.from_file(path)
    except PersonaError as error:
        assert str(path) in str(error)
    else:
        assert isinstance(persona, Persona)


@FUZZ
@given(content=st.binary(max_size=400), suffix=st.sampled_from(SUFFIXES))
def test_fuzz_random_bytes_raise_only_persona_errors(tmp_path, content, suffix):
    assert_only_persona_errors(write(tmp_path, f"fuzz{suffix}", content))


SYNTAX_ALPHABET = st.sampled_from(
    [*"abcnx019 \t\n:-[]{}()\"'`,.&*!|>?%@#=\\+~", "\x00", "\x7f", "é", "\u2028", "\ufeff"]
)
SYNTAX_FRAGMENTS = st.sampled_from(
    [
        "name: ",
        "description: ",
        "traits: ",
        "persona:\n  ",
        '"name": ',
        'name = "',
        "[persona]\n",
        "!!python/object:os.system ",
        "!!binary ",
        "&a ",
        "*a ",
        "---\n",
        "%YAML 1.1\n",
        "? ",
        "<<: ",
        "{",
        "}",
        "[",
        "]",
        "null",
        "true",
        "NaN",
        "1e999",
        "2024-01-01",
        "0x1F",
        "\\u0000",
    ]
)
SYNTAX_TEXT = st.lists(
    st.one_of(SYNTAX_FRAGMENTS, st.text(SYNTAX_ALPHABET, max_size=8)), max_size=30
)


@FUZZ
@given(pieces=SYNTAX_TEXT, suffix=st.sampled_from(SUFFIXES))
def test_fuzz_yaml_and_json_ish_text_raises_only_persona_errors(tmp_path, pieces, suffix):
    assert_only_persona_errors(write(tmp_path, f"fuzz{suffix}", "".join(pieces)))


def _toml_key(key: str) -> str:
    return _toml_string(key)


def _toml_string(text: str) -> str:
    escaped = json.dumps(text, ensure_ascii=False)
    # JSON leaves DEL raw, TOML does not allow it in a basic string.
    return escaped.replace("\x7f", "\\u007f")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))  # pragma: no cover - the strategies make nothing else


def to_toml(data: dict[str, Any]) -> str:
    """A minimal TOML writer (no TOML writer is a dependency): one key per line, inline tables."""
    return "".join(f"{_toml_key(k)} = {_toml_value(v)}\n" for k, v in data.items())


SCALARS = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    st.text(max_size=30),
)
NESTED = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
FIELD_NAMES = st.sampled_from(
    [*VALID, "persona", "trait", "extra", ""],
)
PERSONA_SHAPED = st.dictionaries(
    st.one_of(FIELD_NAMES, st.text(max_size=10)), st.one_of(NESTED, st.just([])), max_size=8
)
DOCUMENTS = st.one_of(
    PERSONA_SHAPED,
    st.builds(lambda inner: {"persona": inner}, PERSONA_SHAPED),
    st.builds(lambda extra: {**VALID, **extra}, PERSONA_SHAPED),
)


@FUZZ
@given(data=DOCUMENTS, fmt=st.sampled_from(["yaml", "json", "toml"]))
def test_fuzz_random_nested_structures_in_each_format_raise_only_persona_errors(
    tmp_path, data, fmt
):
    if fmt == "yaml":
        content = yaml.safe_dump(data, allow_unicode=True)
    elif fmt == "json":
        content = json.dumps(data, ensure_ascii=False)
    else:
        content = to_toml(data)
    assert_only_persona_errors(write(tmp_path, f"fuzz.{fmt}", content))


@FUZZ
@given(data=DOCUMENTS, fmt=st.sampled_from(["json", "toml"]))
def test_fuzz_toml_and_json_writers_round_trip_through_from_file(tmp_path, data, fmt):
    # The documents that validate must read back to exactly the same persona in both formats.
    try:
        expected = Persona.from_mapping(data)
    except PersonaError:
        return
    content = json.dumps(data, ensure_ascii=False) if fmt == "json" else to_toml(data)
    if "nan" in content.lower():
        return  # NaN != NaN, so equality says nothing here
    assert Persona.from_file(write(tmp_path, f"fuzz.{fmt}", content)) == expected


# -- resolving a persona -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog() -> dict[str, Persona]:
    return {p.name: p for p in builtin_personas()}


def test_none_and_persona_objects_pass_through_unchanged(catalog):
    persona = Persona(name="x", description="someone")
    assert resolve_persona(None, catalog) is None
    assert resolve_persona(persona, catalog) is persona


def test_a_catalog_name_resolves_to_the_catalog_persona(catalog):
    assert resolve_persona("math_teacher", catalog) is catalog["math_teacher"]


@pytest.mark.parametrize(
    "spelling", ["Math-Teacher", "MATH_TEACHER", " math teacher ", "math-teacher"]
)
def test_a_name_is_normalised_before_lookup(catalog, spelling):
    assert resolve_persona(spelling, catalog) is catalog["math_teacher"]


@pytest.mark.parametrize("as_path", [True, False])
def test_a_file_path_resolves_to_the_persona_in_the_file(tmp_path, catalog, as_path):
    path = write(tmp_path, "nurse.yaml", YAML_TEXT)
    persona = resolve_persona(path if as_path else str(path), catalog)
    assert persona == Persona(**VALID)


def test_a_path_with_a_persona_suffix_that_does_not_exist_says_file_not_found(tmp_path, catalog):
    with pytest.raises(PersonaError, match="not found"):
        resolve_persona(str(tmp_path / "nobody.json"), catalog)


def test_an_unknown_name_lists_close_matches(catalog):
    with pytest.raises(PersonaError) as info:
        resolve_persona("math_teachr", catalog)
    message = str(info.value)
    assert "'math_teachr'" in message
    assert "Did you mean: math_teacher" in message


def test_an_unknown_name_with_no_close_match_explains_what_is_accepted(catalog):
    with pytest.raises(PersonaError) as info:
        resolve_persona("qqqqzzzz", catalog)
    message = str(info.value)
    assert "Did you mean" not in message
    assert "persona file" in message


@pytest.mark.parametrize("blank", ["", "   "])
def test_an_empty_persona_name_is_rejected(catalog, blank):
    with pytest.raises(PersonaError, match="empty"):
        resolve_persona(blank, catalog)
