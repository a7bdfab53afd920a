"""What ``enforce`` mode does with findings: the built-in ``resolve_findings`` plugin.

``guard="monitor"`` only records findings (on the :class:`~persona_plugins.TurnResult`, as span
events and in the ``persona_plugins.guard.findings`` counter); ``guard="enforce"`` calls
``resolve_findings``, and this plugin decides with a :class:`GuardPolicy`:

1. every finding asks for an action by its detector and severity (:data:`DEFAULT_POLICY`):
   ``info`` findings ask for nothing; toxicity at ``high`` (slurs, threats, dehumanising) asks to
   ``block``; abstention, stereotype and other toxicity ask to ``regenerate``; a persona
   contradiction and the team findings ask to ``annotate``;
2. the strongest request wins (allow < annotate < regenerate < block);
3. ``regenerate`` first looks for a clean neutral candidate (a Jekyll & Hyde turn has one): that
   is a ``fallback`` and costs no call. Otherwise the model answers once more through the persona
   stage (the pipeline's ``regenerate``: the persona plugins write the system prompt, with
   :data:`DEBIAS_INSTRUCTION` after it); if the new answer is clean (no ``warning`` or ``high``
   finding from any detector, third-party ones included: the pipeline's ``recheck``) it replaces
   the response, else it is kept with a note, or blocked when a ``block``-level finding remains.
   A failed call annotates the original response;
4. ``block`` makes the pipeline raise :class:`~persona_plugins.GuardrailViolation`, which carries
   the findings, the conversation and the blocked text: the user's message is never lost.

Change the policy by registering your own instance (a later plugin wins a *decide* hook)::

    pm.register(GuardActions(GuardPolicy(actions={"stereotype": "block"})))
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from persona_plugins.hookspecs import hookimpl
from persona_plugins.model import ChatModel, Message
from persona_plugins.persona import Persona
from persona_plugins.results import (
    Candidate,
    Finding,
    GuardAction,
    Recheck,
    Regenerate,
    Resolution,
)

__all__ = [
    "ANNOTATION_PREFIX",
    "DEBIAS_INSTRUCTION",
    "DEFAULT_POLICY",
    "GuardActions",
    "GuardPolicy",
    "annotate",
    "builtin_findings",
]

#: Added to the persona's system prompt when a response is regenerated.
DEBIAS_INSTRUCTION = (
    "Important: answer the user's request fully and accurately, exactly as a capable assistant "
    "would. Your persona shapes only your voice and style; it never limits what you can do, so "
    "never decline or hedge a task because of who you are, and do not mention your identity as "
    "a reason for anything. Do not make generalisations about any group of people, do not agree "
    "with stereotypes, and use respectful language."
)

#: The note appended by the ``annotate`` action.
ANNOTATION_PREFIX = "[persona-plugins guardrails: "

#: Action per detector: ``(action for warning, action for high)``; ``info`` asks for nothing.
DEFAULT_POLICY: dict[str, tuple[GuardAction, GuardAction]] = {
    "abstention": ("regenerate", "regenerate"),
    "stereotype": ("regenerate", "regenerate"),
    "toxicity": ("regenerate", "block"),
    "persona_contradiction": ("annotate", "annotate"),
    "monopolization": ("annotate", "annotate"),
    "drift": ("annotate", "annotate"),
    "discussion_length": ("annotate", "annotate"),
}
_STRENGTH: dict[str, int] = {"allow": 0, "annotate": 1, "fallback": 2, "regenerate": 2, "block": 3}


@dataclass
class GuardPolicy:
    """Which action each finding asks for.

    Args:
        actions: overrides by detector name: one action for every severity, or a
            ``(warning, high)`` pair.
        unknown: the action for findings of detectors not in the policy (third-party ones).
        regenerate_check: which detectors' findings count on a regenerated (or fallen-back)
            answer; None (the default): every detector's.
    """

    actions: Mapping[str, GuardAction | tuple[GuardAction, GuardAction]] = field(
        default_factory=dict
    )
    unknown: GuardAction = "annotate"
    regenerate_check: tuple[str, ...] | None = None

    def action_for(self, finding: Finding) -> GuardAction:
        if finding.severity == "info":
            return "allow"
        rule = self.actions.get(finding.detector, DEFAULT_POLICY.get(finding.detector))
        if rule is None:
            return self.unknown
        if isinstance(rule, tuple):
            return rule[1] if finding.severity == "high" else rule[0]
        return rule

    def decide(self, findings: Sequence[Finding]) -> GuardAction:
        wanted: GuardAction = "allow"
        for finding in findings:
            action = self.action_for(finding)
            if _STRENGTH[action] > _STRENGTH[wanted]:
                wanted = action
        return wanted


def annotate(text: str, findings: Sequence[Finding]) -> str:
    """``text`` with a one-line note naming the findings."""
    shown = [f for f in findings if f.severity != "info"] or list(findings)
    summary = "; ".join(f"{f.detector}: {f.message}" for f in shown[:3])
    more = f" (+{len(shown) - 3} more)" if len(shown) > 3 else ""
    return f"{text.rstrip()}\n\n{ANNOTATION_PREFIX}{summary}{more}]"


def _annotated(response: str, findings: Sequence[Finding], reason: str) -> Resolution:
    return Resolution(action="annotate", text=annotate(response, findings), reason=reason)


def _named(findings: Sequence[Finding]) -> str:
    """The detectors of the findings that ask for an action, for a resolution's reason."""
    return ", ".join(sorted({f.detector for f in findings if f.severity != "info"}))


def builtin_findings(
    response: str,
    *,
    messages: Sequence[Message] = (),
    persona: Persona | None = None,
    detectors: Sequence[str] = ("abstention", "stereotype", "toxicity"),
) -> list[Finding]:
    """Run the built-in offline detectors directly (no plugin manager, no model)."""
    from persona_plugins.guardrails import abstention, contradiction, stereotype, toxicity

    table: dict[str, Any] = {
        "abstention": abstention.DEFAULT,
        "stereotype": stereotype.DEFAULT,
        "toxicity": toxicity.DEFAULT,
        "persona_contradiction": contradiction.DEFAULT,
    }
    found: list[Finding] = []
    for name in detectors:
        detector = table.get(name)
        if detector is not None:
            found += detector.detect(response, messages=messages, persona=persona)
    return found


def _builtin_recheck(messages: Sequence[Message], response_persona: Persona | None) -> Recheck:
    """A ``recheck`` for calls outside a pipeline: the built-in detectors, as on the response."""

    async def recheck(text: str, *, persona: Persona | None = response_persona) -> list[Finding]:
        return builtin_findings(text, messages=messages, persona=persona)

    return recheck


class GuardActions:
    """The ``resolve_findings`` plugin (see the module docstring).

    Args:
        policy: the :class:`GuardPolicy` (default: :data:`DEFAULT_POLICY`).
        regenerate_max_tokens: a cap for the regeneration call (None: the turn's settings).
    """

    def __init__(
        self, policy: GuardPolicy | None = None, *, regenerate_max_tokens: int | None = None
    ):
        self.policy = policy or GuardPolicy()
        self.regenerate_max_tokens = regenerate_max_tokens

    def _remaining(self, found: Sequence[Finding]) -> list[Finding]:
        """The findings that still matter on a re-checked answer (warning or high)."""
        wanted = self.policy.regenerate_check
        return [
            f for f in found if f.severity != "info" and (wanted is None or f.detector in wanted)
        ]

    def resolve(
        self,
        messages: Sequence[Message],
        response: str,
        findings: Sequence[Finding],
        candidates: Sequence[Candidate],
        persona: Persona | None,
        config: Any,
        model: ChatModel | None,
        recheck: Recheck | None = None,
        regenerate: Regenerate | None = None,
    ) -> Resolution | Awaitable[Resolution]:
        """The decision for ``response``: a :class:`Resolution` for ``allow``, ``annotate`` and
        ``block``, an awaitable of one when the answer is to be repaired (``config`` and
        ``model`` are not used). Without ``recheck`` (outside a pipeline) answers are re-checked
        by the built-in detectors only. To change the decision in a subclass, override
        :meth:`resolve_findings` (the hook the pipeline calls)."""
        recheck = recheck or _builtin_recheck(messages, persona)
        return self.resolve_findings(response, findings, candidates, recheck, regenerate)

    # Not trylast, unlike the module's own implementation: an instance a user registers runs
    # before the built-in default and so replaces it. The conversation and persona are not
    # arguments: ``recheck`` and ``regenerate`` carry them.
    @hookimpl
    def resolve_findings(
        self,
        response: str,
        findings: Sequence[Finding],
        candidates: Sequence[Candidate],
        recheck: Recheck,
        regenerate: Regenerate | None,
    ) -> Resolution | Awaitable[Resolution]:
        action = self.policy.decide(findings)
        named = _named(findings)
        if action == "allow":
            return Resolution(action="allow", reason="only informational findings")
        if action == "annotate":
            return _annotated(response, findings, f"annotated: {named}")
        if action == "block":
            return Resolution(action="block", reason=f"blocked by the guardrails: {named}")
        return self._repaired(response, findings, named, candidates, recheck, regenerate)

    async def _repaired(
        self,
        response: str,
        findings: Sequence[Finding],
        named: str,
        candidates: Sequence[Candidate],
        recheck: Recheck,
        regenerate: Regenerate | None,
    ) -> Resolution:
        """A clean neutral candidate in place of ``response``, else a regenerated answer."""
        for candidate in candidates:
            if (
                candidate.ok
                and candidate.persona is None
                and candidate.text.strip() != response.strip()
                and not self._remaining(await recheck(candidate.text, persona=None))
            ):
                return Resolution(
                    action="fallback",
                    text=candidate.text,
                    reason=f"{named}: fell back to the clean neutral answer {candidate.name!r}",
                )
        if regenerate is None:
            return _annotated(
                response, findings, f"{named}: no way to regenerate outside a pipeline; annotated"
            )
        settings: dict[str, Any] = {}
        if self.regenerate_max_tokens is not None:
            settings["max_tokens"] = self.regenerate_max_tokens
        try:
            text = await regenerate(DEBIAS_INSTRUCTION, **settings)
        except Exception as exc:
            return _annotated(
                response,
                findings,
                f"{named}: regeneration failed ({type(exc).__name__}); annotated",
            )
        if not isinstance(text, str) or not text.strip():
            return _annotated(
                response, findings, f"{named}: the regenerated answer was empty; annotated"
            )
        return self._judge_regenerated(text, named, self._remaining(await recheck(text)))

    def _judge_regenerated(self, text: str, named: str, remaining: list[Finding]) -> Resolution:
        if not remaining:
            return Resolution(
                action="regenerate",
                text=text,
                reason=f"{named}: regenerated with a de-biasing "
                "instruction; the new answer is clean",
            )
        still = ", ".join(sorted({f.detector for f in remaining}))
        if self.policy.decide(remaining) == "block":
            return Resolution(
                action="block", reason=f"{named}: the regenerated answer still has {still}"
            )
        return Resolution(
            action="regenerate",
            text=annotate(text, remaining),
            reason=f"{named}: regenerated; the new answer still has {still} (annotated)",
        )


DEFAULT = GuardActions()


@hookimpl(trylast=True)
def resolve_findings(
    response: str,
    findings: Sequence[Finding],
    candidates: Sequence[Candidate],
    recheck: Recheck,
    regenerate: Regenerate,
) -> Resolution | Awaitable[Resolution]:
    return DEFAULT.resolve_findings(response, findings, candidates, recheck, regenerate)
