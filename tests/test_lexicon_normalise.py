"""Gloss normalisation on real glosses from the kaikki sample and Open Dictionary (tests/data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from definitionemb.lexicon.normalise import (
    VERSION,
    clean_markup,
    detect_form_of,
    nested_gloss,
    normalise_gloss,
    normalise_pos,
    split_qualifiers,
)

DATA = Path(__file__).parent / "data"


def _od_senses() -> list[str]:
    out = []
    for f in sorted((DATA / "open-dictionary" / "api").glob("*/*.json")):
        for w in json.loads(f.read_text(encoding="utf-8")).values():
            for e in w["etymologies"]:
                for p in e["partsOfSpeech"]:
                    out.extend(s["sense"] for s in p["senses"])
    return out


def _kaikki_senses() -> list[dict]:
    out = []
    for f in sorted((DATA / "kaikki").glob("*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            out.extend(json.loads(line)["senses"])
    return out


def _od_with(fragment: str) -> str:
    hits = [s for s in _od_senses() if fragment in s]
    assert hits, f"test data lacks a gloss with {fragment!r}"
    return hits[0]


def test_version_is_a_nonempty_string() -> None:
    assert isinstance(VERSION, str) and VERSION


def test_sup_ordinal_stays_inline() -> None:
    assert clean_markup("the 20<sup>th</sup> century") == "the 20th century"


def test_sup_sub_digits_become_unicode_scripts_on_real_chemistry() -> None:
    raw = _od_with("BeO<sub>2</sub><sup>2-</sup>")
    g = normalise_gloss(raw)
    assert "BeO₂²⁻" in g.text
    assert "<" not in g.text
    assert "inorganic-chemistry" in g.tags


def test_math_and_chem_wrappers_dropped_content_kept() -> None:
    raw = _od_with("<math>")
    text = normalise_gloss(raw).text
    assert "<math>" not in text and "</math>" not in text
    inner = raw.split("<math>", 1)[1].split("</math>", 1)[0]
    assert inner in text
    chem = _od_with("<chem>")
    ctext = normalise_gloss(chem).text
    assert "<chem>" not in ctext
    assert chem.split("<chem>", 1)[1].split("</chem>", 1)[0].replace("<sub>", "")[:3] in ctext


def test_entities_and_whitespace() -> None:
    assert clean_markup("a&emsp;b &mdash;  c\n d") == "a b — c d"
    assert clean_markup("  x\u00a0y  ") == "x y"


def test_nfc() -> None:
    decomposed = "cafe\u0301"
    assert clean_markup(decomposed) == "caf\u00e9"


def test_wiki_links_keep_label() -> None:
    assert clean_markup("Abbreviation of [[United States|US]] and [[cat]].") == "Abbreviation of US and cat."


def test_leading_qualifiers_move_to_tags_real_kaikki() -> None:
    # kaikki's raw_glosses keep the qualifiers that its glosses dropped: we must agree with its split.
    checked = 0
    for s in _kaikki_senses():
        raws, glosses = s.get("raw_glosses"), s.get("glosses")
        if not raws or not glosses or not raws[-1].startswith("("):
            continue
        g = normalise_gloss(raws[-1])
        assert g.text == glosses[-1], raws[-1]
        assert g.tags, raws[-1]
        checked += 1
    assert checked >= 10


def test_qualifier_examples() -> None:
    g = normalise_gloss("(archaic or literary) A wagon; a four-wheeled cart for hauling loads.")
    assert g.text.startswith("A wagon") and {"archaic", "literary"} <= set(g.tags)
    g = normalise_gloss("(dated, slang) Excellent.")
    assert g.text == "Excellent." and g.tags[:2] == ("dated", "slang")
    g = normalise_gloss("(intransitive, now usually literary) To exist; to have real existence, to be alive.")
    assert g.tags == ("intransitive", "literary")
    rest, tags = split_qualifiers("(constellation)")
    assert rest == "(constellation)" and tags == []  # a gloss that is only a qualifier keeps its text


def test_chemical_formula_in_parentheses_is_not_a_qualifier() -> None:
    g = normalise_gloss("(CH<sub>3</sub>)<sub>3</sub>N is an amine")
    assert g.text == "(CH₃)₃N is an amine" and g.tags == ()


@pytest.mark.parametrize(
    ("gloss", "form_of", "alt_of", "tag"),
    [
        ("plural of cat", "cat", None, "form-of"),
        ("simple past and past participle of coincide", "coincide", None, "form-of"),
        ("third-person singular simple present indicative form of bring", "bring", None, "form-of"),
        ("Alternative form of 1920s.", None, "1920s", "alt-of"),
        ("Misspelling of peninsula, found chiefly in non-rhotic accents.", None, "peninsula", "misspelling"),
        ("Abbreviation of but.", None, "but", "abbreviation"),
        ("Archaic form of synonym.", None, "synonym", "archaic"),
        ("Obsolete spelling of beacon.", None, "beacon", "obsolete"),
    ],
)
def test_form_of_alt_of(gloss: str, form_of: str | None, alt_of: str | None, tag: str) -> None:
    g = normalise_gloss(gloss)
    assert (g.form_of, g.alt_of) == (form_of, alt_of)
    assert tag in g.tags


def test_not_form_of() -> None:
    for gloss in (
        "A form of government.",
        "Any bird of prey of the subfamilies Falconinae.",
        "Synonym of bird",
    ):
        assert detect_form_of(gloss) == (None, None, ())


def test_form_of_agrees_with_kaikki_on_real_senses() -> None:
    checked = 0
    for s in _kaikki_senses():
        for key in ("form_of", "alt_of"):
            if s.get(key):
                g = normalise_gloss(s["glosses"][-1])
                assert getattr(g, key) == s[key][0]["word"], s["glosses"]
                checked += 1
    assert checked >= 3


def test_form_of_detected_in_open_dictionary_slice() -> None:
    senses = _od_senses()
    forms = [normalise_gloss(s) for s in senses if s.startswith(("plural of ", "simple past"))]
    assert forms and all(g.form_of for g in forms)
    alts = [normalise_gloss(s) for s in senses if s.startswith("Alternative form of ")]
    assert alts and all(g.alt_of for g in alts)


def test_obsolete_archaic_tags_are_filterable() -> None:
    assert "obsolete" in normalise_gloss("(now obsolete) To share.").tags
    assert "archaic" in normalise_gloss("x", ["archaic-or-poetic"]).tags
    assert "misspelling" in normalise_gloss("Misspelling of peninsula.").tags


def test_nested_gloss_keeps_child() -> None:
    assert nested_gloss(["A bird.", "Specifically, a falcon."]) == "Specifically, a falcon."
    assert nested_gloss(["A bird.", "  "]) == "A bird."
    assert nested_gloss([]) == ""


def test_every_real_gloss_normalises_clean() -> None:
    for raw in _od_senses():
        g = normalise_gloss(raw)
        assert g.text == g.text.strip()
        assert "  " not in g.text
        assert "<sup>" not in g.text and "<math>" not in g.text and "&emsp;" not in g.text


@pytest.mark.parametrize(
    ("pos", "want"),
    [
        ("Noun", "noun"),
        ("Adjective ", "adj"),
        ("Adverb", "adv"),
        ("Proper noun", "name"),
        ("verb", "verb"),
        ("Prepositional phrase", "prep_phrase"),
        ("adj", "adj"),
        (None, None),
        ("", None),
    ],
)
def test_normalise_pos(pos: str | None, want: str | None) -> None:
    assert normalise_pos(pos) == want
