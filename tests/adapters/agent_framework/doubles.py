"""Test doubles for the Agent Framework adapter tests.

They only record what a chat client receives, count calls, and force replies a real model would
not reliably give (a tool call, a refusal in character, a judge's verdict). Everything between the
agent and the double is the real framework, the real adapter and the real pipeline.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agent_framework import (
    BaseChatClient,
    ChatMiddlewareLayer,
    ChatResponse,
    ChatResponseUpdate,
    Content,
    FunctionInvocationLayer,
    Message,
    ResponseStream,
    prepend_instructions_to_messages,
)
from agent_framework.observability import ChatTelemetryLayer

JUDGE = "You are an impartial grader"
USAGE = {"input_token_count": 12, "output_token_count": 5, "total_token_count": 17}


@dataclass
class Call:
    """One call the raw client received: the messages as the model sees them (instructions
    first, as shipped clients put them), the options, and whether it streamed."""

    messages: list[Message]
    options: dict[str, Any]
    stream: bool

    @property
    def system(self) -> list[str]:
        """The texts of the leading system messages."""
        head = []
        for message in self.messages:
            if message.role != "system":
                break
            head.append(message.text)
        return head

    @property
    def tools(self) -> bool:
        return bool(self.options.get("tools"))

    @property
    def kind(self) -> str:
        """``judge``, ``persona`` (a persona first) or ``neutral``."""
        first = self.system[0] if self.system else ""
        if first.startswith(JUDGE):
            return "judge"
        return "persona" if first.startswith("You are") else "neutral"

    def judged(self) -> tuple[str, str]:
        """The two candidate texts a judge call shows, in the order shown."""
        body = self.messages[-1].text
        first, second = re.findall(r"\[\[C[12]-[0-9a-f]+\]\]\n(.*?)\n\[\[/C[12]-", body, re.S)
        return first, second


Reply = str | Sequence[Content]


class RecordingClient(
    FunctionInvocationLayer[Any], ChatMiddlewareLayer[Any], ChatTelemetryLayer[Any], BaseChatClient
):
    """A chat client stacked like the shipped ones whose raw calls answer from ``answer(call)``
    (a text, or contents such as a function call) and are recorded in ``calls``."""

    OTEL_PROVIDER_NAME = "test-double"

    def __init__(self, answer: Callable[[Call], Reply] | Sequence[Reply] = ("Four.",), **kwargs):
        super().__init__(**kwargs)
        self.model = "recording"
        if callable(answer):
            self.answer = answer
        else:
            replies = list(answer)
            self.answer = lambda call: replies.pop(0) if len(replies) > 1 else replies[0]
        self.calls: list[Call] = []

    def _inner_get_response(self, *, messages, stream, options, **kwargs):
        seen = prepend_instructions_to_messages(list(messages), options.get("instructions"))
        call = Call(seen, dict(options), stream)
        self.calls.append(call)
        reply = self.answer(call)
        contents = [Content.from_text(reply)] if isinstance(reply, str) else list(reply)
        if stream:

            async def updates():
                for content in contents:
                    yield ChatResponseUpdate(role="assistant", contents=[content])
                usage = Content.from_usage(usage_details=dict(USAGE))
                yield ChatResponseUpdate(role="assistant", contents=[usage])

            return ResponseStream(updates(), finalizer=ChatResponse.from_updates)

        async def respond():
            message = Message("assistant", contents)
            return ChatResponse(messages=[message], usage_details=dict(USAGE), model="recording")

        return respond()


def function_call(name: str, **arguments: Any) -> list[Content]:
    return [Content.from_function_call(call_id=f"call_{name}", name=name, arguments=arguments)]
