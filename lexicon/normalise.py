"""Gloss normalisation: one function turns a source's gloss into the text the lexicon stores.

Rules (bump :data:`VERSION` whenever one of them changes, since the lexicon fingerprint records it):

1. Markup. HTML entities are decoded. ``<sup>``/``<sub>`` keep their text: digits and signs become
   Unicode super/subscripts (``x<sup>2</sup>`` → ``x²``, ``BO<sub>3</sub>`` → ``BO₃``), anything else
   stays inline (``20<sup>th</sup>`` → ``20th``). ``<math>``/``<chem>`` and every other tag lose their
   wrapper but keep their content. Wiki links keep their label (``[[a|b]]`` → ``b``), bold/italic quotes
   and ``{{templates}}`` are dropped.
2. Unicode NFC; runs of whitespace (``&emsp;``, NBSP, newlines included) become one space; trimmed.
3. Leading qualifiers such as ``(dated, slang)`` move into tags: split on ``,`` ``;`` `` or `` `` and ``,
   lower-cased, spaces → ``-`` (kaikki's tag spelling), a few synonyms mapped to kaikki's canonical tags
   (``figurative`` → ``figuratively``, ``by extension`` → ``broadly``). A gloss that is *only* a
   qualifier keeps its text.
4. Nested senses: kaikki repeats the parent gloss, ``glosses = [parent, child]``. We keep the child only
   (:func:`nested_gloss`): the parent is its own sense already, and repeating it in every child would
   make the children's texts (and so their embeddings) drift towards the parent.
5. Form-of / alt-of senses are recognised from the text ("plural of cat", "simple past and past participle
   of coincide", "Alternative form of X", "Misspelling of X", "Abbreviation of X", ...) with the target
   word recorded and tags ``form-of`` / ``alt-of`` added (plus ``misspelling``, ``abbreviation``,
   ``obsolete``, ``archaic``, ... when the wording says so).
6. Any tag mentioning obsolete / archaic / dated / misspelling also adds that bare tag, so
   ``WHERE NOT list_has_any(tags, ['obsolete', 'archaic', 'misspelling'])`` filters them.

De-duplication of identical glosses of one word happens where the senses are collected (readers drop
repeats within an entry; :mod:`lexicon.build` drops repeats across the entries of one word).
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import NamedTuple

__all__ = [
    "VERSION",
    "Gloss",
    "clean_markup",
    "split_qualifiers",
    "detect_form_of",
    "synonym_of",
    "nested_gloss",
    "normalise_gloss",
    "normalise_pos",
    "FLAG_TAGS",
]

VERSION = "1"

# Tags that mark senses most users filter out; any tag containing one of these words adds the bare word.
FLAG_TAGS = ("obsolete", "archaic", "dated", "misspelling")

_SUP = str.maketrans("0123456789+-−=()n", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁻⁼⁽⁾ⁿ")
_SUB = str.maketrans("0123456789+-−=()", "₀₁₂₃₄₅₆₇₈₉₊₋₋₌₍₎")
_SUP_OK = set("0123456789+-−=()n")
_SUB_OK = set("0123456789+-−=()")

_SUPSUB = re.compile(r"<(sup|sub)\b[^>]*>(.*?)</\1\s*>", re.I | re.S)
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>")
_LINK = re.compile(r"\[\[(?:[^\[\]|]*\|)?([^\[\]]*)\]\]")
_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")
_QUOTES = re.compile(r"'{2,}")
_WS = re.compile(r"\s+")
_QUALIFIER = re.compile(r"\(([^()]{1,80})\)(?:\s+|$)")
_QUAL_SPLIT = re.compile(r"\s*(?:[,;]|\bor\b|\band\b)\s*")
_MARKUP = re.compile(r"[<&\[{']")
_NEEDS_WS = re.compile(r"\s\s|[^\S ]")  # two blanks, or a blank other than a plain space

_TAG_SYNONYMS = {
    "figurative": "figuratively",
    "by-extension": "broadly",
    "nonstandard": "nonstandard",
    "informal": "informal",
    "uncountable": "uncountable",
    "countable": "countable",
}

# "plural of cat", "simple past and past participle of coincide", "third-person singular simple present
# indicative form of bring": a run of inflection words, optionally "form", then "of TARGET".
_INFLECTION_WORDS = (
    r"simple|present|past|future|perfect|pluperfect|third-person|first-person|second-person|"
    r"singular|plural|comparative|superlative|participle|tense|indicative|subjunctive|imperative|"
    r"gerund|infinitive|and|or|masculine|feminine|neuter|possessive|genitive|inflection|inflected"
)
_FORM_OF = re.compile(
    rf"^(?P<kind>(?:(?:{_INFLECTION_WORDS})[\s,]+)*(?:{_INFLECTION_WORDS})(?:\s+form)?)\s+of\s+(?P<target>.+)$",
    re.I,
)
_FORM_KEY = re.compile(
    r"plural|past|participle|comparative|superlative|present|singular|gerund|inflect", re.I
)
_ALT_OF = re.compile(
    r"^(?P<kind>(?:(?:alternative|obsolete|archaic|dated|rare|nonstandard|informal|uncommon|euphemistic|"
    r"elongated|pronunciation|eye[- ]dialect|dialectal|standard|former|british|american|us|uk)\s+)+"
    r"(?:form|spelling|typography|capitalization|letter-case\s+form|case\s+form)"
    r"|(?:common\s+)?misspelling|abbreviation|initialism|acronym|contraction|clipping|"
    r"ellipsis|short\s+form|short|alternative\s+name)\s+(?:of|for)\s+(?P<target>.+)$",
    re.I,
)
# Every form-of / alt-of gloss starts with one of these words: a cheap test before the regexes.
_FIRST_WORDS = frozenset(
    (
        _INFLECTION_WORDS.replace("|", " ")
        + " alternative obsolete archaic dated rare nonstandard informal uncommon euphemistic elongated"
        " pronunciation eye eye-dialect dialectal standard former british american us uk misspelling common"
        " abbreviation initialism acronym contraction clipping ellipsis short"
    ).split()
)

# Hedges in qualifiers ("now usually literary", "especially derogatory") say how often, not what.
_HEDGE = re.compile(
    r"^(?:(?:now|usually|chiefly|often|frequently|especially|mostly|sometimes|rarely|originally|"
    r"mainly|generally|somewhat|very|also)\s+)+",
    re.I,
)
_TARGET_END = re.compile(r"\s*(?:[,;:(]|\s[-–—]\s).*$", re.S)


class Gloss(NamedTuple):
    """A normalised gloss: text plus what normalisation learned about it (a NamedTuple: cheap to make)."""

    text: str
    tags: tuple[str, ...] = ()
    form_of: str | None = None
    alt_of: str | None = None


def _supsub(m: re.Match[str]) -> str:
    kind, body = m.group(1).lower(), m.group(2)
    body = _TAG.sub("", body)
    ok = _SUP_OK if kind == "sup" else _SUB_OK
    if body and all(c in ok for c in body):
        return body.translate(_SUP if kind == "sup" else _SUB)
    return body


def clean_markup(text: str) -> str:
    """Strip HTML and wiki markup, decode entities, NFC, collapse whitespace (rules 1-2)."""
    if _MARKUP.search(text):
        if "<" in text:
            text = _SUPSUB.sub(_supsub, text)
            text = _TAG.sub("", text)
        if "&" in text:
            text = html.unescape(text)
        if "[[" in text:
            text = _LINK.sub(r"\1", text)
            text = text.replace("[[", "").replace("]]", "")
        if "{{" in text:
            text = _TEMPLATE.sub("", text)
        if "''" in text:
            text = _QUOTES.sub("", text)
    if not text.isascii() and not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    if _NEEDS_WS.search(text):
        text = _WS.sub(" ", text)
    return text.strip()


def _tag(word: str) -> str:
    t = _WS.sub("-", _HEDGE.sub("", word.strip().lower()))
    return _TAG_SYNONYMS.get(t, t)


def split_qualifiers(text: str) -> tuple[str, list[str]]:
    """Move leading ``(qualifier, ...)`` groups into tags (rule 3). Returns (rest, tags)."""
    tags: list[str] = []
    rest = text
    while rest.startswith("("):
        m = _QUALIFIER.match(rest)
        if m is None or m.end() >= len(rest):
            break  # not a qualifier, or the whole gloss is one: keep it as text
        tags.extend(_tag(p) for p in _QUAL_SPLIT.split(m.group(1)) if p.strip())
        rest = rest[m.end() :]
    return rest, tags


def _target(raw: str) -> str | None:
    t = _TARGET_END.sub("", raw).strip()
    if t.endswith(".") and not t.endswith(".."):
        t = t[:-1].rstrip()
    t = t.strip("\"'“”‘’ ")
    return t or None


def detect_form_of(text: str) -> tuple[str | None, str | None, tuple[str, ...]]:
    """Recognise "plural of X" (form-of) and "Alternative form of X" (alt-of) glosses.

    Returns ``(form_of_target, alt_of_target, extra_tags)``.
    """
    if " of " not in text and " for " not in text:
        return None, None, ()
    if text.split(" ", 1)[0].rstrip(",").lower() not in _FIRST_WORDS:
        return None, None, ()
    m = _ALT_OF.match(text)
    if m:
        kind = m.group("kind").lower()
        extra = ["alt-of", *(f for f in (*FLAG_TAGS, "abbreviation", "initialism", "acronym") if f in kind)]
        return None, _target(m.group("target")), tuple(extra)
    m = _FORM_OF.match(text)
    if m and _FORM_KEY.search(m.group("kind")):
        return _target(m.group("target")), None, ("form-of",)
    return None, None, ()


_SYNONYM_OF = re.compile(r"^synonym\s+(?:of|for)\s+(?P<target>.+)$", re.I)


def synonym_of(text: str) -> str | None:
    """The target of a "Synonym of X" gloss (Wiktionary's {{synonym of}}), a synonym relation."""
    m = _SYNONYM_OF.match(text) if text[:7].lower() == "synonym" else None
    return _target(m.group("target")) if m else None


def nested_gloss(glosses: Sequence[str]) -> str:
    """The gloss of a (possibly nested) kaikki sense: the last, most specific element (rule 4)."""
    for g in reversed(glosses):
        if g and g.strip():
            return g
    return ""


def _flags(tags: Iterable[str]) -> list[str]:
    out = []
    for t in tags:
        for f in FLAG_TAGS:
            if f in t and t != f:
                out.append(f)
    return out


def normalise_gloss(raw: str, tags: Iterable[str] = ()) -> Gloss:
    """Normalise one gloss (rules 1-3, 5, 6); `tags` are the source's own tags, kept first."""
    text = clean_markup(raw)
    found: list[str] = list(tags)
    if text.startswith("("):
        text, quals = split_qualifiers(text)
        found.extend(quals)
    form_of, alt_of, extra = detect_form_of(text) if text else (None, None, ())
    found.extend(extra)
    found.extend(_flags(found))
    # keep first occurrence order, drop repeats
    return Gloss(text, tuple(dict.fromkeys(t for t in found if t)), form_of, alt_of)


_POS = {
    "noun": "noun",
    "verb": "verb",
    "adjective": "adj",
    "adjectivve": "adj",
    "adverb": "adv",
    "interjection": "intj",
    "preposition": "prep",
    "pronoun": "pron",
    "conjunction": "conj",
    "determiner": "det",
    "numeral": "num",
    "number": "num",
    "proper noun": "name",
    "contraction": "contraction",
    "particle": "particle",
    "letter": "character",
    "phrase": "phrase",
    "symbol": "symbol",
    "article": "article",
    "postposition": "postp",
    "prepositional phrase": "prep_phrase",
    "prefix": "prefix",
    "suffix": "suffix",
    "infix": "infix",
    "interfix": "interfix",
    "punctuation mark": "punct",
    "proverb": "proverb",
    "idiom": "phrase",
    "abbreviation": "abbrev",
    "multiple parts of speech": "unknown",
}


def normalise_pos(pos: str | None) -> str | None:
    """Map a part-of-speech label to kaikki's spelling ("Noun" → "noun", "Adjective" → "adj").

    kaikki's own labels pass through unchanged; unknown labels are lower-cased with ``_`` for spaces.
    """
    if pos is None:
        return None
    key = _WS.sub(" ", pos.strip().lower())
    if not key:
        return None
    return _POS.get(key, key.replace(" ", "_"))
