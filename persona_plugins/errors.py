"""Errors raised by persona-plugins.

Every error the library raises on purpose derives from :class:`PersonaPluginsError`, so callers can
catch one class. Messages name what is wrong, where, and what to do about it.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from persona_plugins.model import Message

__all__ = [
    "ConfigError",
    "DataDownloadError",
    "DataError",
    "DataNotFoundError",
    "GuardrailViolation",
    "MessageError",
    "MissingExtraError",
    "ModelCallError",
    "ModelLoadError",
    "PersonaError",
    "PersonaPluginsError",
    "PluginError",
    "require_extra",
]


class PersonaPluginsError(Exception):
    """Base class of every error persona-plugins raises on purpose."""


class PersonaError(PersonaPluginsError, ValueError):
    """A persona could not be found, read or validated.

    The message names the file (when there is one) and the field or line at fault. ``problems``
    holds every problem found, one self-contained line each (``file: field 'x': what is wrong``);
    the message is the first of them, followed by the others on the same line.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        location: str | None = None,
        more: Sequence[tuple[str | None, str]] = (),
    ):
        self.source = source
        self.location = location
        self.problems = [_problem_line(source, location, message)] + [
            _problem_line(source, where, what) for where, what in more
        ]
        text = self.problems[0]
        if more:
            others = "; ".join(f"{where}: {what}" if where else what for where, what in more)
            text = f"{text}; {others}"
        super().__init__(text)


def _problem_line(source: str | None, location: str | None, message: str) -> str:
    prefix = ": ".join(p for p in (source, location) if p)
    return f"{prefix}: {message}" if prefix else message


class ConfigError(PersonaPluginsError, ValueError):
    """A :class:`~persona_plugins.PipelineConfig` value or config file is invalid."""


class MessageError(PersonaPluginsError, ValueError):
    """The messages given to a pipeline are malformed; the message names the one at fault."""


class PluginError(PersonaPluginsError):
    """A plugin could not be loaded, or implements a hook that does not exist."""


class DataError(PersonaPluginsError):
    """A public data set (see ``persona-plugins data list``) is missing or could not be fetched.

    The message names the files, the places looked in or the URL, and what to do.
    """


class DataNotFoundError(DataError, FileNotFoundError):
    """Files a command needs are in none of the data folders looked in (bad input: exit 2)."""


class DataDownloadError(DataError):
    """``persona-plugins data pull`` failed: unreachable server, HTTP error or checksum mismatch.

    Nothing is left behind for the file that failed: a download is written to a temporary file and
    renamed only once its SHA-256 checksum matches.
    """


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


def require_extra(what: str, extra: str, *modules: str) -> None:
    """Import ``modules`` (the guard at the top of a module that needs an optional dependency);
    when one is missing, raise :class:`MissingExtraError` saying that ``what`` needs ``extra``."""
    try:
        for module in modules:
            importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(what, extra, missing=exc.name) from exc


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
