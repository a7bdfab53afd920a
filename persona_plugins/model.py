"""Framework-neutral conversation types and the one model protocol the core calls.

Adapters turn a framework's client into a :class:`ChatModel` and back; the core only ever calls
``await model.complete(messages, **settings)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ChatModel", "Completion", "Message", "Role", "Usage"]

Role = Literal["system", "user", "assistant", "tool"]


class Message(BaseModel):
    """One message of a conversation.

    >>> Message(role="user", content="What is 7 * 6?").role
    'user'
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    role: Role
    content: str
    name: str | None = None

    @classmethod
    def system(cls, content: str) -> Message:
        return cls(role="system", content=content)

    @classmethod
    def user(cls, content: str, name: str | None = None) -> Message:
        return cls(role="user", content=content, name=name)

    @classmethod
    def assistant(cls, content: str, name: str | None = None) -> Message:
        return cls(role="assistant", content=content, name=name)


class Usage(BaseModel):
    """Token counts of one or more model calls; ``+`` adds them up."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        tokens_in = self.input_tokens + other.input_tokens
        tokens_out = self.output_tokens + other.output_tokens
        if type(tokens_in) is int and type(tokens_out) is int:  # validating two ints is quicker
            return Usage(input_tokens=tokens_in, output_tokens=tokens_out)
        return Usage.model_construct(input_tokens=tokens_in, output_tokens=tokens_out)


class Completion(BaseModel):
    """What a model returned for one call."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    text: str
    usage: Usage = Field(default_factory=Usage)
    finish_reason: str | None = None
    model: str | None = None


@runtime_checkable
class ChatModel(Protocol):
    """The one protocol the core calls.

    Any object with an ``async complete(messages, **settings) -> Completion`` method is a chat
    model.
    Optional attributes the core reads when present:

    - ``model_name`` (str): recorded as ``gen_ai.request.model`` on spans;
    - ``provider_name`` (str): recorded as ``gen_ai.provider.name``;
    - ``supports_multiple_system_messages`` (bool): when False the persona is merged into an
      existing leading system message instead of being added as a second one.

    Example::

        class EchoModel:
            model_name = "echo"

            async def complete(self, messages, **settings):
                return Completion(text=messages[-1].content)
    """

    async def complete(self, messages: Sequence[Message], **settings: Any) -> Completion: ...
