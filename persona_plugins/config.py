"""One configuration for every adapter, the CLI and config files."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from persona_plugins.errors import ConfigError
from persona_plugins.persona import Persona

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["JudgeSettings", "PipelineConfig"]

PersonaMode = Literal["static", "generated", "multi", "none"]
PersonaTemplate = Literal["describe", "adopt", "roleplay"]
EnsembleMode = Literal["off", "jekyll_hyde"]
RefineStrategy = Literal["off", "sequential", "parallel", "adaptive"]
GuardMode = Literal["off", "monitor", "enforce"]


class JudgeSettings(BaseModel):
    """How the Jekyll & Hyde judge decides.

    Args:
        retries: how many times an inconsistent pair of verdicts is re-asked.
        fallback: the candidate used when no consistent verdict is reached.
        certainty: ask the judge for a verbal certainty (1-100) with each verdict.
        min_certainty: verdicts below this certainty do not count (needs ``certainty``).
    """

    model_config = ConfigDict(extra="forbid", defer_build=True)

    retries: int = Field(default=1, ge=0, le=10)
    fallback: Literal["neutral", "persona", "first"] = "neutral"
    certainty: bool = False
    min_certainty: int | None = Field(default=None, ge=1, le=100)


class PipelineConfig(BaseModel):
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
        detectors: guardrail detector names to run.
        model_settings: generation settings passed to every model call (``max_tokens``,
            ``temperature``, ...). Empty by default: the model's own settings apply (the embedded
            model bounds its generation itself).
        timeout_s: give up on a single model call after this many seconds (None: wait).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, defer_build=True)

    persona: Persona | str | None = None
    persona_mode: PersonaMode = "static"
    persona_template: PersonaTemplate = "describe"
    merge_system_messages: bool | None = None
    ensemble: EnsembleMode = "off"
    judge: JudgeSettings = Field(default_factory=JudgeSettings)
    answer_format: str = "auto"
    refine: RefineStrategy = "off"
    refiners: list[str] = Field(default_factory=lambda: ["factuality", "persona", "coherence"])
    max_rounds: int = Field(default=1, ge=1, le=10)
    guard: GuardMode = "off"
    detectors: list[str] = Field(
        default_factory=lambda: ["abstention", "stereotype", "toxicity", "persona_contradiction"]
    )
    model_settings: dict[str, Any] = Field(default_factory=dict)
    timeout_s: float | None = Field(default=None, gt=0)

    @field_validator("persona", mode="before")
    @classmethod
    def _persona_path(cls, value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, dict):
            return Persona.from_mapping(value, source="config 'persona'")
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
    def validated(cls, data: dict[str, Any], *, source: str) -> PipelineConfig:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"'{'.'.join(str(p) for p in err['loc']) or '(top level)'}': {err['msg']}"
                for err in exc.errors()
            )
            raise ConfigError(f"{source}: invalid configuration: {problems}") from None

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
        if isinstance(data.get("persona_plugins"), dict):
            data = data["persona_plugins"]
        elif isinstance(data.get("tool"), dict) and isinstance(
            data["tool"].get("persona_plugins"), dict
        ):
            data = data["tool"]["persona_plugins"]
        return cls.validated(data, source=str(file))
