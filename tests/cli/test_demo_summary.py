"""The demo's summary table: persona descriptions are cut between words, never inside one."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from persona_plugins.cli.demo import DEMO_PERSONA_WIDTH, fit, print_team_summary
from persona_plugins.personas import builtin_personas


def test_a_long_description_is_cut_after_a_whole_word_with_an_ellipsis():
    text = "a cheerful pirate captain who sails the Caribbean and speaks in a hearty way"
    assert fit(text, 44) == "a cheerful pirate captain who sails the..."


def test_a_description_that_fits_is_left_whole():
    assert fit("a friendly tutor", 44) == "a friendly tutor"
    assert fit("x" * 44, 44) == "x" * 44


def test_a_cut_ending_in_punctuation_drops_it_before_the_ellipsis():
    assert fit("a chef, baker, and cheese maker of great renown", 20) == "a chef, baker..."


def test_a_single_overlong_word_is_cut_inside():
    assert fit("x" * 60, 10) == "xxxxxxx..."


words = st.lists(st.from_regex(r"[a-j]{1,12}[,.]?", fullmatch=True), min_size=1, max_size=12)


@given(words, st.integers(min_value=8, max_value=60))
def test_fit_never_exceeds_the_width_and_cuts_between_words(parts, width):
    text = " ".join(parts)
    out = fit(text, width)
    assert len(out) <= width
    if out == text:
        return
    assert out.endswith("...")
    head = out[:-3]
    assert text.startswith(head)
    if len(parts[0]) <= width - 3:  # the first word fits: the cut falls between two words
        assert text[len(head)] in " ,."


def test_summary_rows_show_every_catalog_style_persona_cut_at_a_word(capsys):
    catalog = {p.name: p for p in builtin_personas()}
    rows = [
        (name, catalog[name].description, 1, 100, 50)
        for name in ("pirate_captain", "children_tutor", "shakespearean_poet", "noir_detective")
    ]
    print_team_summary(rows, "embedded", 1.5)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Summary"
    for (name, description, *_), line in zip(rows, out[2:], strict=False):
        cell = line[2 + 20 + 1 : 2 + 20 + 1 + DEMO_PERSONA_WIDTH].rstrip()
        assert line.split()[0] == name
        shown = cell.removesuffix("...")
        assert description.startswith(shown)
        # the cut falls between two words
        assert cell == description or description[len(shown)] in " ,;:.-"
    assert out[-2] == "  model: embedded"
    assert out[-1] == "  total: 4 model calls, 400 tokens in, 200 tokens out, 1.5 s"
