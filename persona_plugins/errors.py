"""Errors raised by persona-plugins.

Every error the library raises on purpose derives from :class:`PersonaPluginsError`, so callers can
catch one class. Messages name what is wrong, where, and what to do about it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from persona_plugins.model import Message

__all__ = [
    "ConfigError",
    "GuardrailViolation",
    "MessageError",
    "MissingExtraError",
    "ModelCallError",
    "ModelLoadError",
    "PersonaError",
    "PersonaPluginsError",
    "PluginError",
]


class PersonaPluginsError(Exception):
    """Base class of every error persona-plugins raises on purpose."""


class PersonaError(PersonaPluginsError, ValueError):
    """A persona could not be found, read or validated.

    The message names the file (when there is one) and the field or line at fault.
    """

    def __init__(self, message: str, *, source: str | None = None, location: str | None = None):
        self.source = source
        self.location = location
        parts = [p for p in (source, location) if p]
        prefix = ": ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class ConfigError(PersonaPluginsError, ValueError):
    """A :class:`~persona_plugins.PipelineConfig` value or config file is invalid."""


class MessageError(PersonaPluginsError, ValueError):
    """The messages given to a pipeline are malformed; the message names the one at fault."""


class PluginError(PersonaPluginsError):
    """A plugin could not be loaded, or implements a hook that does not exist."""


class MissingExtraError(PersonaPluginsError, ImportError):
    """An optional dependency is missing; the message gives the ``pip install`` line."""

    def __init__(self, what: str, extra: str, missing: str | None = None):
        self.extra = extra
        self.missing = missing
        detail = f" (could not import {missing!r})" if missing else ""
        super().__init__(
            f"{what} needs the '{extra}' extra{detail}. "
            f'Install it with: pip install "persona-plugins[{extra}]" '
            f'(from a clone of the repository: pip install -e ".[{extra}]")'
        )


class ModelLoadError(PersonaPluginsError):
    """A local model file is missing, unreadable or not a model llama.cpp can load."""


class ModelCallError(PersonaPluginsError):
    """Every attempt to get an answer from the model failed.

    ``messages`` holds the conversation exactly as the caller passed it, so nothing the user
    wrote is lost; ``__cause__`` is the model's own exception.
    """

    def __init__(self, message: str, *, messages: Sequence[Message] = (), errors: Any = None):
        super().__init__(message)
        self.messages = list(messages)
        self.errors = list(errors or [])


class GuardrailViolation(PersonaPluginsError):
    """A response was blocked by the guardrails in ``enforce`` mode.

    ``findings`` lists what was found; ``messages`` and ``response`` keep the conversation and the
    blocked text so that nothing is lost.
    """

    def __init__(
        self,
        message: str,
        *,
        findings: Sequence[Any] = (),
        messages: Sequence[Message] = (),
        response: str | None = None,
    ):
        super().__init__(message)
        self.findings = list(findings)
        self.messages = list(messages)
        self.response = response
