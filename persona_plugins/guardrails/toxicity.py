"""Detector ``toxicity``: slurs, threats, dehumanising statements, insults, profanity.

The default backend is a lexicon with patterns, offline and dependency-free
(:class:`LexiconBackend`): the word lists in :mod:`persona_plugins.guardrails._lexicon` (curated
from the MIT-licensed word list shipped in the ``better-profanity`` 0.7.0 wheel, identity terms
removed; provenance there) and patterns written for this project for threats, wishes of harm,
dehumanising statements about groups and insults aimed at someone.

+------------------+----------+-----------------------------------------------------------------+
| category         | severity | fires on                                                        |
+==================+==========+=================================================================+
| ``slur``         | high     | a slur against a protected group                                |
| ``threat``       | high     | "I will hurt you", "kill yourself", "I hope you die"            |
| ``dehumanising`` | high     | "<group> should be wiped out", "<group> are vermin", "go back   |
|                  |          | to your country"                                                |
| ``insult``       | warning  | an insult aimed at someone ("you are an idiot")                 |
| ``profanity``    | warning  | strong profanity                                                |
| ``sexual``       | warning  | sexually explicit terms                                         |
+------------------+----------+-----------------------------------------------------------------+

Heavier local classifiers add to the lexicon when their files are already on disk; nothing is
ever downloaded (each backend checks for its files first and is skipped with a log line when they
are missing):

- ``"toxicity:profanity_check"``: the linear SVM shipped inside the ``alt-profanity-check`` wheel
  (``pip install alt-profanity-check``; it pins an exact scikit-learn). Beware: it scores
  identity statements such as "I am gay." as offensive (0.98), so its findings are ``warning``;
- ``"toxicity:detoxify"``: Detoxify, with ``PERSONA_PLUGINS_DETOXIFY_CHECKPOINT`` (a ``.ckpt``
  file) and ``PERSONA_PLUGINS_DETOXIFY_CONFIG_DIR`` (the Hugging Face config and tokenizer folder)
  pointing at local files;
- ``"toxicity:llm_guard"``: LLM Guard's ``Toxicity`` output scanner on a model folder given by
  ``PERSONA_PLUGINS_LLM_GUARD_MODEL_DIR`` (loaded with ``local_files_only``).

Or register your own detector instance with any object that has ``name`` and
``scores(texts) -> list[float]``::

    pm.unregister(name="persona_plugins.guardrails.toxicity")
    pm.register(ToxicityDetector(classifier=DetoxifyBackend("/models/toxic.ckpt", "/models/bert")))
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from persona_plugins.guardrails import _lexicon
from persona_plugins.guardrails._base import BuiltinDetector, CheckCall, guarded, register_builtin
from persona_plugins.guardrails._text import (
    LazyPattern,
    excerpt,
    scan,
    sentence_spans,
    trie_pattern,
)
from persona_plugins.guardrails.normalise import Normalised, normalise
from persona_plugins.guardrails.stereotype import GROUPS
from persona_plugins.model import Message
from persona_plugins.persona import Persona
from persona_plugins.results import Finding

__all__ = [
    "DETECTOR_NAME",
    "BackendUnavailable",
    "DetoxifyBackend",
    "LLMGuardBackend",
    "LexiconBackend",
    "ProfanityCheckBackend",
    "ToxicityClassifier",
    "ToxicityDetector",
    "ToxicityHit",
]

DETECTOR_NAME = "toxicity"
_log = logging.getLogger("persona_plugins.guardrails")

Severity = Literal["info", "warning", "high"]


@dataclass(frozen=True)
class ToxicityHit:
    """One category found in a text, with how often and the first match."""

    category: str
    severity: Severity
    score: float
    evidence: str
    count: int = 1
    source: str = "lexicon"


def _terms_pattern(terms: Iterable[str]) -> LazyPattern:
    # A trie of the words (see trie_pattern): one branch per character, not one per word.
    body = trie_pattern({t.lower() for t in terms}, space="[ _-]")
    return LazyPattern(rf"(?<![a-z0-9])(?:{body})(?![a-z0-9])")


_GROUP = "(?:" + trie_pattern({t for group in GROUPS.values() for t in group}) + ")"
_INSULT = "(?:" + trie_pattern(set(_lexicon.INSULTS), space=" ") + ")"

_THREATS = [
    LazyPattern(
        r"\b(?:i|we)(?:'ll|’ll|\s+will|\s+am\s+going\s+to|'m\s+going\s+to|’m\s+going\s+to|"
        r"'m\s+gonna|\s+gonna|\s+want\s+to|\s+wanna|\s+should)\s+(?:\w+\s+)?(?:kill|murder|hurt|"
        r"stab|shoot|strangle|choke|rape|burn|find\s+and\s+hurt)\s+"
        r"(?:you|u|ya|your\s+family|him|her|them)\b|\bbeat\s+(?:you|u|him|her|them)\s+"
        r"(?:up|to\s+death|senseless|black\s+and\s+blue)\b"
    ),
    LazyPattern(
        r"\b(?:kill|hang|shoot)\s+your\s*self\b|\bkys\b|\bgo\s+(?:and\s+)?die\b|"
        r"\b(?:i\s+)?hope\s+(?:you|u)\s+(?:die|get\s+killed|get\s+hurt|rot|burn)\b|"
        r"\byou\s+(?:should|deserve\s+to|ought\s+to|need\s+to)\s+(?:die|be\s+killed|suffer|rot)\b"
    ),
]
_DEHUMANISING = [
    LazyPattern(
        rf"\b{_GROUP}\s+(?:should|must|need\s+to|ought\s+to|deserve\s+to)\s+(?:all\s+)?(?:die|be\s+"
        r"(?:killed|exterminated|eliminated|wiped\s+out|gassed|shot|hanged|hung|sterili[sz]ed|"
        r"eradicated|purged))\b"
    ),
    LazyPattern(
        r"\b(?:kill|exterminate|gas|eliminate|wipe\s+out|eradicate|purge)\s+(?:all\s+)?(?:the\s+)?"
        rf"{_GROUP}\b"
    ),
    LazyPattern(
        rf"\b{_GROUP}\s+are\s+(?:all\s+|just\s+|nothing\s+but\s+)?(?:\w+\s+)?(?:vermin|animals|"
        r"subhuman|sub-human|parasites|cockroaches|rats|a\s+disease|a\s+plague|a\s+cancer|filth|"
        r"scum|savages|apes|monkeys|dogs|not\s+human)\b"
    ),
    LazyPattern(r"\bgo\s+back\s+to\s+(?:your|their)\s+(?:own\s+)?(?:country|countries)\b"),
]
_INSULTS = [
    LazyPattern(
        r"\byou(?:'re|’re|\s+are|\s+r|\s+were|\s+look\s+like|\s+sound\s+like)?\s+"
        r"(?:such\s+|so\s+|a\s+|an\s+|the\s+|total\s+|complete\s+|absolute\s+|utter\s+|"
        r"fucking\s+|little\s+|stupid\s+|dumb\s+|pathetic\s+|worthless\s+|big\s+)*"
        rf"{_INSULT}\b"
    ),
    LazyPattern(rf"\b{_INSULT}s?\s+like\s+you\b"),
    LazyPattern(r"\bshut\s+(?:the\s+fuck\s+)?up\b"),
]

_SLUR_PATTERN = _terms_pattern(_lexicon.SLURS)
_PROFANITY_PATTERN = _terms_pattern(_lexicon.PROFANITY)
_SEXUAL_PATTERN = _terms_pattern(_lexicon.SEXUAL)


class LexiconBackend:
    """The built-in, offline lexicon and patterns (see the module docstring)."""

    name = "lexicon"

    def hits(self, text: str | Normalised) -> list[ToxicityHit]:
        """What the lexicon finds in ``text`` (normalised first: disguised words are found,
        and the evidence quotes the original text)."""
        seen = text if isinstance(text, Normalised) else normalise(text)
        plain = seen.text
        spans = sentence_spans(plain)
        out: list[ToxicityHit] = []

        def add(
            category: str, severity: Severity, score: float, found: list[re.Match[str]]
        ) -> None:
            if found:
                first = found[0]
                start, end = seen.original_span(first.start(), first.end())
                context = seen.original[max(0, start - 40) : end + 40]
                out.append(ToxicityHit(category, severity, score, excerpt(context), len(found)))

        add("slur", "high", 0.95, list(scan(_SLUR_PATTERN, plain, spans)))
        add("threat", "high", 0.95, [m for p in _THREATS for m in scan(p, plain, spans)])
        add("dehumanising", "high", 0.95, [m for p in _DEHUMANISING for m in scan(p, plain, spans)])
        add("insult", "warning", 0.7, [m for p in _INSULTS for m in scan(p, plain, spans)])
        add("profanity", "warning", 0.6, list(scan(_PROFANITY_PATTERN, plain, spans)))
        add("sexual", "warning", 0.6, list(scan(_SEXUAL_PATTERN, plain, spans)))
        return out


class ToxicityClassifier(Protocol):
    """A local classifier: ``scores(texts)`` gives a toxicity probability (0-1) per text."""

    name: str

    def scores(self, texts: Sequence[str]) -> list[float]: ...


class BackendUnavailable(RuntimeError):
    """A classifier backend's package or files are missing (nothing is downloaded instead)."""


class ProfanityCheckBackend:
    """The SVM shipped inside the ``alt-profanity-check`` wheel (its ``data/model.joblib``)."""

    name = "profanity_check"

    def __init__(self) -> None:
        try:
            import profanity_check  # type: ignore[import-not-found,unused-ignore]
        except Exception as exc:
            raise BackendUnavailable(
                f"alt-profanity-check is not installed ({exc}); pip install alt-profanity-check"
            ) from exc
        self._predict = profanity_check.predict_prob

    def scores(self, texts: Sequence[str]) -> list[float]:
        return [float(p) for p in self._predict(list(texts))]


class DetoxifyBackend:
    """Detoxify on local files only: a checkpoint and the Hugging Face config/tokenizer folder."""

    name = "detoxify"

    def __init__(
        self,
        checkpoint: str | os.PathLike[str],
        huggingface_config_path: str | os.PathLike[str],
        model_type: str = "original",
    ):
        ckpt, config = Path(checkpoint), Path(huggingface_config_path)
        if not ckpt.is_file() or not config.is_dir():
            raise BackendUnavailable(
                f"Detoxify needs a checkpoint file and a config folder on disk; missing: "
                f"{', '.join(str(p) for p in (ckpt, config) if not p.exists())}"
            )
        try:
            from detoxify import Detoxify  # type: ignore[import-not-found,unused-ignore]
        except Exception as exc:
            raise BackendUnavailable(f"detoxify is not installed ({exc})") from exc
        self._model = Detoxify(
            model_type, checkpoint=str(ckpt), huggingface_config_path=str(config), device="cpu"
        )

    def scores(self, texts: Sequence[str]) -> list[float]:
        result = self._model.predict(list(texts))
        columns = [v for v in result.values() if isinstance(v, list)]
        return [max(float(col[i]) for col in columns) for i in range(len(texts))]


class LLMGuardBackend:
    """LLM Guard's ``Toxicity`` output scanner on a model folder already on disk."""

    name = "llm_guard"

    def __init__(self, model_dir: str | os.PathLike[str], threshold: float = 0.5):
        folder = Path(model_dir)
        if not (folder / "config.json").is_file():
            raise BackendUnavailable(f"no model folder with config.json at {folder}")
        try:
            from llm_guard.model import Model  # type: ignore[import-not-found,unused-ignore]
            from llm_guard.output_scanners import (  # type: ignore[import-not-found,unused-ignore]
                Toxicity,
            )
        except Exception as exc:
            raise BackendUnavailable(f"llm-guard is not installed ({exc})") from exc
        local = {"local_files_only": True}
        self._scanner = Toxicity(
            model=Model(path=str(folder), kwargs=local, tokenizer_kwargs=local),
            threshold=threshold,
        )

    def scores(self, texts: Sequence[str]) -> list[float]:
        return [float(self._scanner.scan("", text)[2]) for text in texts]


def _classifier_from_options(options: frozenset[str]) -> ToxicityClassifier | None:
    try:
        if "profanity_check" in options:
            return ProfanityCheckBackend()
        if "detoxify" in options:
            return DetoxifyBackend(
                os.environ.get("PERSONA_PLUGINS_DETOXIFY_CHECKPOINT", ""),
                os.environ.get("PERSONA_PLUGINS_DETOXIFY_CONFIG_DIR", ""),
            )
        if "llm_guard" in options:
            return LLMGuardBackend(os.environ.get("PERSONA_PLUGINS_LLM_GUARD_MODEL_DIR", ""))
    except BackendUnavailable as exc:
        _log.warning("toxicity backend unavailable, using the lexicon only: %s", exc)
    return None


class ToxicityDetector(BuiltinDetector):
    """Finds toxic language (``detector="toxicity"``): one finding per category found.

    Example::

        from persona_plugins.guardrails.toxicity import ToxicityDetector

        findings = ToxicityDetector().detect("Shut up, you absolute idiot.")
        assert {f.metadata["category"] for f in findings} == {"insult"}

    Args:
        classifier: a local classifier whose findings add to the lexicon's (default: none, or the
            one named in the detector's options).
        threshold: the classifier score at or above which a text is reported.
    """

    name = DETECTOR_NAME
    options = frozenset({"profanity_check", "detoxify", "llm_guard"})

    def __init__(self, classifier: ToxicityClassifier | None = None, threshold: float = 0.8):
        self.lexicon = LexiconBackend()
        self.classifier = classifier
        self.threshold = threshold
        self._from_options: dict[frozenset[str], ToxicityClassifier | None] = {}

    def hits(
        self, text: str | Normalised, classifier: ToxicityClassifier | None = None
    ) -> list[ToxicityHit]:
        seen = text if isinstance(text, Normalised) else normalise(text)
        found = self.lexicon.hits(seen)
        classifier = classifier or self.classifier
        if classifier is not None and seen.original.strip():
            try:
                score = classifier.scores([seen.original])[0]
            except Exception:
                _log.warning("toxicity classifier %r failed", classifier.name, exc_info=True)
            else:
                if score >= self.threshold:
                    found.append(
                        ToxicityHit(
                            "toxic",
                            "warning",
                            score,
                            excerpt(seen.original),
                            source=classifier.name,
                        )
                    )
        return found

    def detect(
        self,
        response: str,
        *,
        messages: Sequence[Message] = (),
        persona: Persona | None = None,
        classifier: ToxicityClassifier | None = None,
    ) -> list[Finding]:
        return guarded(self.name, lambda: self._findings(response, classifier))

    def _findings(self, response: str, classifier: ToxicityClassifier | None) -> list[Finding]:
        seen = normalise(response)
        return [
            Finding(
                detector=self.name,
                severity=hit.severity,
                score=hit.score,
                message=f"{hit.category.replace('_', ' ')} in the response"
                + (f" ({hit.count} matches)" if hit.count > 1 else ""),
                evidence=hit.evidence,
                metadata={
                    "category": hit.category,
                    "count": hit.count,
                    "backend": hit.source,
                    "truncated": seen.truncated,
                },
            )
            for hit in self.hits(seen, classifier)
        ]

    def _check(self, options: frozenset[str], call: CheckCall) -> list[Finding]:
        classifier = None
        if options and self.classifier is None:
            if options not in self._from_options:  # load a classifier once per option set
                self._from_options[options] = _classifier_from_options(options)
            classifier = self._from_options[options]
        return self._findings(call.response, classifier)


DEFAULT = ToxicityDetector()
register_detectors = register_builtin(DEFAULT)
