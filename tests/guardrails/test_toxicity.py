"""The toxicity detector: slurs, threats, dehumanising speech, insults, profanity; identity terms
are never toxic; classifier backends are used only from files already on disk."""

from __future__ import annotations

import pytest

from persona_plugins import PipelineConfig
from persona_plugins.guardrails import _lexicon
from persona_plugins.guardrails.toxicity import (
    BackendUnavailable,
    DetoxifyBackend,
    LLMGuardBackend,
    ToxicityDetector,
)

DETECTOR = ToxicityDetector()


def categories(text: str) -> set[str]:
    return {f.metadata["category"] for f in DETECTOR.detect(text)}


@pytest.mark.parametrize(
    "text,category,severity",
    [
        ("I will kill you.", "threat", "high"),
        ("I'm going to hurt you if you say that again.", "threat", "high"),
        ("Go kill yourself.", "threat", "high"),
        ("I hope you die.", "threat", "high"),
        ("Immigrants are vermin.", "dehumanising", "high"),
        ("Muslims should be wiped out.", "dehumanising", "high"),
        ("Go back to your country.", "dehumanising", "high"),
        ("You are an absolute idiot.", "insult", "warning"),
        ("Shut up, nobody asked you.", "insult", "warning"),
        ("This is fucking ridiculous.", "profanity", "warning"),
        ("What a load of bullshit.", "profanity", "warning"),
    ],
)
def test_each_category_is_found_with_its_severity(text, category, severity):
    found = [f for f in DETECTOR.detect(text) if f.metadata["category"] == category]
    assert found, DETECTOR.detect(text)
    assert found[0].severity == severity
    assert found[0].detector == "toxicity"


def test_a_slur_is_high_severity():
    [finding] = DETECTOR.detect("He called them a kike.")
    assert finding.metadata["category"] == "slur"
    assert finding.severity == "high"


@pytest.mark.parametrize(
    "text",
    [
        "I am gay.",
        "The lesbian couple adopted a child.",
        "She is a proud queer artist.",
        "Muslims pray five times a day.",
        "Jews celebrate Passover.",
        "He is transsexual and happy.",
        "People living with HIV deserve good care.",
        "What the hell is this?",
        "Damn, that was close.",
        "Moby Dick is a novel by Herman Melville.",
        "Jackson Pollock painted drip paintings.",
        "She graduated cum laude.",
        "Scunthorpe United won on Saturday.",
        "I will beat you at chess tomorrow.",
        "You are not stupid at all.",
        "That was a stupid mistake of mine.",
        "Blue tits nest in spring.",
    ],
)
def test_identity_terms_and_innocent_words_are_not_toxic(text):
    assert DETECTOR.detect(text) == []


def test_identity_terms_are_absent_from_the_lexicon():
    every = {*_lexicon.SLURS, *_lexicon.PROFANITY, *_lexicon.SEXUAL, *_lexicon.INSULTS}
    for term in ("gay", "gays", "lesbian", "lesbians", "queer", "homo", "transsexual", "hiv"):
        assert term not in every


def test_the_lexicon_states_its_provenance_and_licence():
    assert "better-profanity 0.7.0" in _lexicon.SOURCE and "MIT" in _lexicon.SOURCE
    assert "Permission is hereby granted" in (_lexicon.__doc__ or "")
    assert set(_lexicon.PROJECT_ADDITIONS) <= {*_lexicon.INSULTS}


def test_many_matches_make_one_finding_per_category_with_a_count():
    [finding] = DETECTOR.detect("shit shit shit")
    assert finding.metadata["count"] == 3


def test_a_missing_classifier_package_falls_back_to_the_lexicon_without_downloading(caplog):
    config = PipelineConfig(guard="monitor", detectors=["toxicity:profanity_check"])
    detector = ToxicityDetector()
    try:
        import profanity_check  # noqa: F401
    except ImportError:
        found = detector.check_response([], "You are an idiot.", None, config, None)
        assert [f.metadata["backend"] for f in found] == ["lexicon"]
        assert "unavailable" in caplog.text
    else:  # pragma: no cover - only where alt-profanity-check is installed
        found = detector.check_response([], "You are an idiot.", None, config, None)
        assert {f.metadata["backend"] for f in found} >= {"lexicon"}


def test_heavy_backends_refuse_to_start_without_their_files(tmp_path):
    with pytest.raises(BackendUnavailable, match="missing"):
        DetoxifyBackend(tmp_path / "toxic.ckpt", tmp_path / "bert")
    with pytest.raises(BackendUnavailable, match=r"config\.json"):
        LLMGuardBackend(tmp_path / "no-model")


class FixedClassifier:
    name = "fixed"

    def __init__(self, score: float):
        self.score = score
        self.seen: list[str] = []

    def scores(self, texts):
        self.seen += list(texts)
        return [self.score for _ in texts]


def test_a_classifier_adds_a_finding_at_or_above_its_threshold():
    high = ToxicityDetector(classifier=FixedClassifier(0.93), threshold=0.8)
    [finding] = high.detect("an unpleasant remark")
    assert finding.metadata == {
        "category": "toxic",
        "count": 1,
        "backend": "fixed",
        "truncated": False,
    }
    assert ToxicityDetector(classifier=FixedClassifier(0.2)).detect("a kind remark") == []


def test_a_failing_classifier_leaves_the_lexicon_findings():
    class Broken:
        name = "broken"

        def scores(self, texts):
            raise RuntimeError("weights corrupt")

    found = ToxicityDetector(classifier=Broken()).detect("You moron.")
    assert [f.metadata["category"] for f in found] == ["insult"]
