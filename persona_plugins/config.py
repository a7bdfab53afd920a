"""One configuration for every adapter, the CLI and config files."""

from __future__ import annotations

import difflib
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from persona_plugins.errors import ConfigError
from persona_plugins.persona import Persona

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "EXTRA_SETTINGS",
    "GENERATION_SETTINGS",
    "JudgeSettings",
    "PipelineConfig",
    "check_generation_settings",
    "flatten_generation_settings",
    "nest_generation_settings",
]

PersonaMode = Literal["static", "generated", "multi", "none"]
PersonaTemplate = Literal["describe", "adopt", "roleplay"]
EnsembleMode = Literal["off", "jekyll_hyde"]
RefineStrategy = Literal["off", "sequential", "parallel", "adaptive"]
GuardMode = Literal["off", "monitor", "enforce"]
GuardErrors = Literal["open", "closed"]


#: The generation settings known by name, wherever settings enter: a config's ``model_settings``,
#: a model's ``generation=`` and the settings of one call. Any other name is a ConfigError (so
#: ``max_token`` never passes silently) unless it sits in the :data:`EXTRA_SETTINGS` table.
GENERATION_SETTINGS: Mapping[str, str] = {
    "max_tokens": "the most tokens one call may generate",
    "temperature": "sampling temperature (0: always the likeliest token)",
    "top_p": "nucleus sampling: keep the likeliest tokens up to this probability mass",
    "top_k": "keep only the k likeliest tokens",
    "min_p": "drop tokens less likely than this fraction of the likeliest one",
    "seed": "random seed, for repeatable sampling",
    "stop": "a string or list of strings that end the answer",
    "presence_penalty": "penalise tokens that already appeared (OpenAI style)",
    "frequency_penalty": "penalise tokens by how often they appeared (OpenAI style)",
    "repeat_penalty": "penalise repeated tokens (llama.cpp style; 1.0 is off)",
    "logit_bias": "a mapping of token id to a bias added to its logit",
    "response_format": 'constrain the answer, e.g. {"type": "json_object"}',
}

#: The one key whose table is passed on unchecked: settings specific to one server or backend
#: (``extra = {mirostat_mode = 2}``). See each model for what it does with them.
EXTRA_SETTINGS = "extra"


class _SettingsProblem(ValueError):
    """Unknown generation settings; each problem line says what is wrong (no location)."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


def _settings_problems(settings: Mapping[Any, Any]) -> list[str]:
    known = list(GENERATION_SETTINGS)
    problems = []
    for name in settings:
        if name == EXTRA_SETTINGS or name in GENERATION_SETTINGS:
            continue
        close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(f"unknown generation setting {name!r}{hint}")
    if problems:
        problems.append(
            f"the known settings are {', '.join(known)}; a setting only your server knows "
            f"goes in the '{EXTRA_SETTINGS}' table"
        )
    extra = settings.get(EXTRA_SETTINGS)
    if extra is not None and not isinstance(extra, Mapping):
        problems.append(
            f"'{EXTRA_SETTINGS}' must be a table of server-specific settings, "
            f"not {type(extra).__name__}"
        )
    elif extra:
        for name in extra:
            if not isinstance(name, str):
                problems.append(f"'{EXTRA_SETTINGS}' keys must be text, not {name!r}")
            elif name in GENERATION_SETTINGS:
                problems.append(
                    f"'{EXTRA_SETTINGS}.{name}' is a known setting: set {name!r} directly, "
                    f"outside '{EXTRA_SETTINGS}'"
                )
    return problems


def check_generation_settings(settings: Mapping[str, Any] | None, *, where: str) -> dict[str, Any]:
    """Check generation settings by name and return a copy of them.

    Every name must be one of :data:`GENERATION_SETTINGS`, or :data:`EXTRA_SETTINGS` holding a
    mapping of server-specific settings (which are not checked here). Values are not checked: the
    model reports a bad value when it is called.

    Args:
        settings: the settings (None: none).
        where: where they came from, for the error message (``"MyModel(generation=...)"``).

    Raises:
        ConfigError: naming ``where``, every unknown key and the closest known name.

    Example:
        >>> check_generation_settings({"max_tokens": 20}, where="example")
        {'max_tokens': 20}
    """
    if settings is None:
        return {}
    if not isinstance(settings, Mapping):
        raise ConfigError(
            f"{where}: generation settings must be a mapping of names to values, "
            f"not {type(settings).__name__}"
        )
    problems = _settings_problems(settings)
    if problems:
        raise ConfigError(f"{where}: " + "; ".join(problems))
    copy = dict(settings)
    if isinstance(copy.get(EXTRA_SETTINGS), Mapping):
        copy[EXTRA_SETTINGS] = dict(copy[EXTRA_SETTINGS])
    return copy


def flatten_generation_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The known settings and the :data:`EXTRA_SETTINGS` table's settings in one flat mapping.

    For framework clients that take generation settings as flat keyword arguments (AutoGen's
    ``extra_create_args``, Semantic Kernel's execution settings): ``{"max_tokens": 20, "extra":
    {"reasoning_effort": "low"}}`` becomes ``{"max_tokens": 20, "reasoning_effort": "low"}``.

    Example:
        >>> flatten_generation_settings({"seed": 1, "extra": {"n": 2}})
        {'seed': 1, 'n': 2}
    """
    flat = {key: value for key, value in settings.items() if key != EXTRA_SETTINGS}
    extra = settings.get(EXTRA_SETTINGS)
    if isinstance(extra, Mapping):
        flat.update(extra)
    return flat


def nest_generation_settings(flat: Mapping[str, Any]) -> dict[str, Any]:
    """The reverse of :func:`flatten_generation_settings`: names that are not known settings go
    into the :data:`EXTRA_SETTINGS` table, for a :class:`~persona_plugins.ChatModel` called by a
    framework that passes flat keyword arguments.

    Example:
        >>> nest_generation_settings({"seed": 1, "n": 2})
        {'seed': 1, 'extra': {'n': 2}}
    """
    nested: dict[str, Any] = {}
    extra: dict[str, Any] = dict(flat.get(EXTRA_SETTINGS) or {})
    for key, value in flat.items():
        if key == EXTRA_SETTINGS:
            continue
        if key in GENERATION_SETTINGS:
            nested[key] = value
        else:
            extra[key] = value
    if extra:
        nested[EXTRA_SETTINGS] = extra
    return nested


class _CheckedModel(BaseModel):
    """A model whose every invalid value is a ConfigError naming the field path, however it is
    built: the constructor, ``model_validate`` or an assignment (pydantic's ValidationError never
    reaches the caller)."""

    if not TYPE_CHECKING:  # runtime wrappers; type checkers keep pydantic's typed signatures

        def __init__(self, /, **data: Any) -> None:
            try:
                super().__init__(**data)
            except ValidationError as exc:
                raise _config_error(exc, f"{type(self).__name__}(...)") from None
            except RecursionError:
                raise ConfigError(f"{type(self).__name__}(...): {_TOO_DEEP}") from None

        # Validation itself (model_validate, a nested table) need not call this wrapper: pydantic
        # treats it as its own base __init__, as it does RootModel's.
        __init__.__pydantic_base_init__ = True

        def __setattr__(self, name: str, value: Any) -> None:
            try:
                super().__setattr__(name, value)
            except ValidationError as exc:
                raise _config_error(exc, f"{type(self).__name__}.{name} = {value!r:.60}") from None

        @classmethod
        def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Any:
            return cls._validate(obj, source=cls.__name__, table=None, args=args, kwargs=kwargs)

    @classmethod
    def _validate(
        cls,
        obj: Any,
        *,
        source: str,
        table: str | None,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        try:
            return super().model_validate(obj, *args, **(kwargs or {}))
        except ValidationError as exc:
            raise _config_error(exc, source, table) from None
        except RecursionError:
            raise ConfigError(f"{source}: {_TOO_DEEP}") from None


class JudgeSettings(_CheckedModel):
    """How the Jekyll & Hyde judge decides.

    Args:
        retries: how many times an inconsistent pair of verdicts is re-asked.
        fallback: the candidate used when no consistent verdict is reached.
        certainty: ask the judge for a verbal certainty (1-100) with each verdict.
        min_certainty: verdicts below this certainty do not count (needs ``certainty``).
    """

    model_config = ConfigDict(extra="forbid", defer_build=True)

    # Strict: true is not 1, "5" is not 5 (a config file that says so has a mistake in it).
    retries: int = Field(default=1, ge=0, le=10, strict=True)
    fallback: Literal["neutral", "persona", "first"] = "neutral"
    certainty: bool = Field(default=False, strict=True)
    min_certainty: int | None = Field(default=None, ge=1, le=100, strict=True)


class PipelineConfig(_CheckedModel):
    """Configuration of a :class:`~persona_plugins.PersonaPipeline`.

    Every field has a working default; unknown keys are errors (a typo never passes silently).

    Example:
        >>> cfg = PipelineConfig(persona="math_teacher", ensemble="jekyll_hyde")
        >>> cfg.guard
        'off'

    Args:
        persona: a :class:`Persona`, a catalog name (``persona-plugins personas list``) or the path
            of a YAML, JSON or TOML persona file.
        persona_mode: ``static`` (use ``persona``), ``generated`` (the model writes one for each
            question), ``multi`` (several collaborating personas, Solo Performance Prompting) or
            ``none``.
        persona_template: how the persona is written into the system prompt: ``describe``,
            ``adopt`` or ``roleplay``.
        merge_system_messages: merge the persona into an existing leading system message instead of
            adding its own; ``None`` asks the model (``supports_multiple_system_messages``).
        ensemble: ``off`` or ``jekyll_hyde`` (persona and neutral answers, judged).
        judge: judge settings for the ensemble.
        answer_format: how final answers are extracted to tell whether candidates agree:
            ``auto`` (guessed from the question), ``number``, ``choice``, ``yes_no``, ``text``, or
            a name a plugin registered.
        refine: ``off``, ``sequential``, ``parallel`` or ``adaptive``.
        refiners: reviewer names available to the refinement stage.
        max_rounds: the most refinement rounds per turn.
        guard: ``off``, ``monitor`` (record findings) or ``enforce`` (act on them).
        guard_errors: what a guardrail detector (or resolver) that raises does in ``enforce``
            mode: ``open`` lets the response through, the failure recorded in the result's
            ``errors`` and ``failed_detectors``, the other detectors' findings acted on as usual;
            ``closed`` blocks the response with :class:`~persona_plugins.GuardrailViolation`
            naming the detector that failed.
        detectors: guardrail detector names to run.
        model_settings: generation settings passed to every model call (``max_tokens``,
            ``temperature``, ...: the names of :data:`GENERATION_SETTINGS`; an unknown name is an
            error naming the closest known one). Settings only one server knows go in a nested
            ``extra`` mapping, passed on unchecked. Empty by default: the model's own settings
            apply (the embedded model bounds its generation itself).
        timeout_s: give up on a single model call after this many seconds (None: wait).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, defer_build=True)

    persona: Persona | str | None = None
    persona_mode: PersonaMode = "static"
    persona_template: PersonaTemplate = "describe"
    merge_system_messages: bool | None = Field(default=None, strict=True)
    ensemble: EnsembleMode = "off"
    judge: JudgeSettings = Field(default_factory=JudgeSettings)
    answer_format: str = "auto"
    refine: RefineStrategy = "off"
    refiners: list[str] = Field(default_factory=lambda: ["factuality", "persona", "coherence"])
    max_rounds: int = Field(default=1, ge=1, le=10, strict=True)
    guard: GuardMode = "off"
    guard_errors: GuardErrors = "open"
    detectors: list[str] = Field(
        default_factory=lambda: ["abstention", "stereotype", "toxicity", "persona_contradiction"]
    )
    model_settings: dict[str, Any] = Field(default_factory=dict)
    timeout_s: float | None = Field(default=None, gt=0, strict=True, allow_inf_nan=False)

    @field_validator("persona", mode="before")
    @classmethod
    def _persona_path(cls, value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, dict):
            return Persona.from_mapping(value, source="config 'persona'")
        return value

    @field_validator("model_settings")
    @classmethod
    def _known_settings(cls, value: dict[str, Any]) -> dict[str, Any]:
        problems = _settings_problems(value)
        if problems:
            raise _SettingsProblem(problems)
        return value

    @classmethod
    def build(
        cls, config: PipelineConfig | dict[str, Any] | None = None, **overrides: Any
    ) -> PipelineConfig:
        """Make a config from a config, a mapping or nothing, with keyword overrides on top.

        Raises :class:`~persona_plugins.errors.ConfigError` naming the field at fault.
        """
        if isinstance(config, PipelineConfig):
            data = {name: getattr(config, name) for name in config.model_fields_set}
        elif isinstance(config, dict):
            data = dict(config)
        elif config is None:
            data = {}
        else:
            raise ConfigError(
                f"config must be a PipelineConfig, a dict or None, not {type(config).__name__}"
            )
        data.update(overrides)
        return cls.validated(data, source="config")

    @classmethod
    def validated(
        cls, data: dict[str, Any], *, source: str, table: str | None = None
    ) -> PipelineConfig:
        """Validate ``data``; any problem is a ConfigError naming ``source`` and every field.

        ``table`` is the TOML table the data came from (``"persona_plugins"``), so that a
        problem inside a nested table is named as the file shows it (``[model_settings]``).
        """
        config: PipelineConfig = cls._validate(data, source=source, table=table)
        return config

    @classmethod
    def from_toml(cls, path: str | Path) -> PipelineConfig:
        """Read a config from a TOML file (its top level, or a ``[persona_plugins]`` table).

        Example file::

            persona = "math_teacher"
            ensemble = "jekyll_hyde"

            [judge]
            retries = 2
        """
        file = Path(path)
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{file}: config file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{file}: cannot read the config file ({exc})") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: invalid TOML: {exc}") from None
        except RecursionError:
            raise ConfigError(f"{file}: invalid TOML: {_TOO_DEEP}") from None
        table = ""
        if isinstance(data.get("persona_plugins"), dict):
            data, table = data["persona_plugins"], "persona_plugins"
        elif isinstance(data.get("tool"), dict) and isinstance(
            data["tool"].get("persona_plugins"), dict
        ):
            data, table = data["tool"]["persona_plugins"], "tool.persona_plugins"
        return cls.validated(data, source=str(file), table=table)


#: Said of data nested so deep that reading it would exhaust Python's stack.
_TOO_DEEP = "tables or lists nested too deeply to read; flatten the configuration"

#: What to write instead, by pydantic error type (the values a field of that kind takes).
_HINTS = {
    "int_type": "write a whole number, such as 2 (not text, true/false or 2.0)",
    "float_type": "write a number, such as 30 or 2.5 (not text or true/false)",
    "bool_type": "write true or false (not text or a number)",
    "finite_number": "write a finite number, or leave it unset",
    "string_type": "write text",
    "list_type": 'write a list, such as ["a", "b"]',
    "dict_type": "write a table of names to values",
}

#: Pydantic error types whose message is clearer with the value given.
_SHOW_INPUT = (
    "literal_error",
    "greater_than",
    "greater_than_equal",
    "less_than",
    "less_than_equal",
)


def _config_error(exc: ValidationError, source: str, table: str | None = None) -> ConfigError:
    problems = "; ".join(_config_problem(err, table) for err in exc.errors())
    return ConfigError(f"{source}: invalid configuration: {problems}")


def _config_problem(error: Any, table: str | None) -> str:
    location = ".".join(str(part) for part in error["loc"])
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, _SettingsProblem):
        if table is None:
            return f"'{location}': {cause}"
        # From a file: the table as the file spells it ([model_settings], [tool.x.model_settings]).
        return f"[{table + '.' if table else ''}{location}]: {cause}"
    problem = f"'{location or '(top level)'}': {error['msg']}"
    kind = error["type"]
    if kind in _HINTS or kind in _SHOW_INPUT:
        value = error.get("input")
        problem += f", got {value!r:.60} ({type(value).__name__})"
    if kind in _HINTS:
        problem += f": {_HINTS[kind]}"
    return problem
