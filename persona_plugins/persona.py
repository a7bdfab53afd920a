"""The :class:`Persona` type and reading personas from YAML, JSON or TOML files."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from persona_plugins.errors import PersonaError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = ["PERSONA_FILE_SUFFIXES", "Persona", "resolve_persona"]

PERSONA_FILE_SUFFIXES = (".yaml", ".yml", ".json", ".toml")
_MAX_FILE_BYTES = 1_000_000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\- ]{0,79}$")


class Persona(BaseModel):
    """Who the assistant is while answering.

    Args:
        name: short identifier, used in catalogs, traces and the CLI (``math_teacher``).
        description: one phrase completing "You are ..." (``a patient high-school math teacher``).
        traits: personality traits (``patient``, ``precise``).
        style: how the persona writes.
        statements: facts about the persona that its answers must not contradict.
        demographics: protected attributes the bias guardrails watch (``{"religion": "atheist"}``).
        metadata: anything else; not sent to the model.

    Example:
        >>> p = Persona(name="pirate", description="a cheerful pirate captain", traits=["bold"])
        >>> p.name
        'pirate'
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", str_strip_whitespace=True, defer_build=True
    )

    name: str = Field(min_length=1, max_length=80)
    description: str = Field(min_length=1, max_length=4000)
    traits: list[str] = Field(default_factory=list)
    style: str | None = None
    statements: list[str] = Field(default_factory=list)
    demographics: dict[str, str] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                "must start with a letter or digit and contain only letters, digits, spaces, "
                "'_', '-' or '.' (at most 80 characters)"
            )
        return value

    @field_validator("traits", "statements")
    @classmethod
    def _no_empty_items(cls, value: list[str]) -> list[str]:
        cleaned = [item.strip() for item in value]
        if any(not item for item in cleaned):
            raise ValueError("must not contain empty strings")
        return cleaned

    @classmethod
    def from_file(cls, path: str | Path) -> Persona:
        """Read a persona from a ``.yaml``/``.yml``, ``.json`` or ``.toml`` file.

        Raises:
            PersonaError: naming the file and the field or line for every problem: a missing
                file, an unknown suffix, a syntax error, a missing or invalid field. Its
                ``problems`` list holds every problem found, one line each (a file that does not
                parse has one problem; a file that parses may have several invalid fields).

        Example::

            persona = Persona.from_file("personas/teacher.yaml")
        """
        source = str(path)
        file = Path(path)
        suffix = file.suffix.lower()
        if suffix not in PERSONA_FILE_SUFFIXES:
            raise PersonaError(
                f"unsupported file type {suffix or '(none)'!r}; use one of "
                + ", ".join(PERSONA_FILE_SUFFIXES),
                source=source,
            )
        try:
            if not file.is_file():
                raise PersonaError("file not found", source=source)
            raw = file.read_bytes()
        except PersonaError:
            raise
        except OSError as exc:
            raise PersonaError(
                f"cannot read the file ({exc.strerror or exc})", source=source
            ) from exc
        if len(raw) > _MAX_FILE_BYTES:
            raise PersonaError(
                f"file is {len(raw)} bytes; a persona file may be at most {_MAX_FILE_BYTES}",
                source=source,
            )
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise PersonaError(
                f"not UTF-8 text (bad byte at offset {exc.start})", source=source
            ) from exc
        data = _parse(text, suffix, source)
        return cls.from_mapping(data, source=source)

    @classmethod
    def from_mapping(cls, data: Any, *, source: str | None = None) -> Persona:
        """Validate a mapping (as read from a file) into a persona; raises :class:`PersonaError`."""
        if not isinstance(data, dict):
            raise PersonaError(
                f"expected a mapping of persona fields at the top level, got {type(data).__name__}",
                source=source,
            )
        if isinstance(data.get("persona"), dict) and len(data) == 1:
            data = data["persona"]
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            # Every problem, not only the first: `personas validate` prints them one per line.
            problems = [_field_problem(error) for error in exc.errors()]
            (location, message), *more = problems
            raise PersonaError(message, source=source, location=location, more=more) from None
        except (RecursionError, TypeError) as exc:
            raise PersonaError(f"invalid persona data ({exc})", source=source) from None


def _field_problem(error: Any) -> tuple[str, str]:
    """``(location, message)`` of one pydantic error, an unknown field with its closest name."""
    location = ".".join(str(part) for part in error["loc"]) or "(top level)"
    message = str(error["msg"])
    if error["type"] == "extra_forbidden" and len(error["loc"]) == 1:
        import difflib

        close = difflib.get_close_matches(str(error["loc"][0]), list(Persona.model_fields), n=1)
        fields = ", ".join(Persona.model_fields)
        hint = f"did you mean {close[0]!r}?" if close else f"the fields are {fields}"
        message = f"unknown field ({hint})"
    return f"field '{location}'", message


def _yaml() -> Any:
    # Imported on first use: YAML is only needed when a YAML file is read (about 10 ms saved at
    # `import persona_plugins`).
    import yaml

    return yaml


def _parse(text: str, suffix: str, source: str) -> Any:
    try:
        if suffix == ".json":
            return json.loads(text)
        if suffix == ".toml":
            return tomllib.loads(text)
        return _yaml().safe_load(text)
    except json.JSONDecodeError as exc:
        raise PersonaError(
            f"invalid JSON: {exc.msg}", source=source, location=f"line {exc.lineno}"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        # Python 3.14+ has exc.lineno; earlier versions only write "(at line N, ...)".
        line = getattr(exc, "lineno", None)
        if line is None:
            found = re.search(r"at line (\d+)", str(exc))
            line = int(found.group(1)) if found else None
        raise PersonaError(
            f"invalid TOML: {exc}", source=source, location=f"line {line}" if line else None
        ) from None
    except _yaml().MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}" if mark is not None else None
        raise PersonaError(
            f"invalid YAML: {exc.problem or exc.context}", source=source, location=where
        ) from None
    except (_yaml().YAMLError, RecursionError, ValueError, TypeError) as exc:
        raise PersonaError(f"cannot parse the file: {exc}", source=source) from None


def resolve_persona(
    spec: Persona | str | Path | None, catalog: dict[str, Persona]
) -> Persona | None:
    """Turn a persona given as an object, a catalog name or a file path into a :class:`Persona`.

    A string naming an existing file, or ending in a persona file suffix, is read as a file;
    otherwise it is looked up in ``catalog``.

    Raises:
        PersonaError: for an unknown name (listing close matches) or a bad file.
    """
    if spec is None or isinstance(spec, Persona):
        return spec
    text = str(spec).strip()
    if not text:
        raise PersonaError("the persona name is empty")
    looks_like_file = Path(text).suffix.lower() in PERSONA_FILE_SUFFIXES or Path(text).is_file()
    if isinstance(spec, Path) or looks_like_file:
        return Persona.from_file(text)
    if text in catalog:
        return catalog[text]
    normalised = text.lower().replace("-", "_").replace(" ", "_")
    if normalised in catalog:
        return catalog[normalised]
    import difflib

    close = difflib.get_close_matches(normalised, list(catalog), n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise PersonaError(
        f"unknown persona {text!r}.{hint} See `persona-plugins personas list`, "
        "or give the path of a .yaml, .json or .toml persona file."
    )
