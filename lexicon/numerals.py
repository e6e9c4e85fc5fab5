"""Digits → English number words, for aligning numeral tokens (`12` → twelve, `3rd` → third)."""

from __future__ import annotations

from functools import lru_cache

import polars as pl

__all__ = ["number_words", "ordinal_words", "numeral_table"]

_UNITS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_ORD_UNITS = [
    "zeroth",
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
    "eleventh",
    "twelfth",
    "thirteenth",
    "fourteenth",
    "fifteenth",
    "sixteenth",
    "seventeenth",
    "eighteenth",
    "nineteenth",
]
_ORD_TENS = [
    "",
    "",
    "twentieth",
    "thirtieth",
    "fortieth",
    "fiftieth",
    "sixtieth",
    "seventieth",
    "eightieth",
    "ninetieth",
]
# Round numbers whose dictionary headword is a single word.
_POWERS = {100: "hundred", 1000: "thousand", 10**6: "million", 10**9: "billion", 10**12: "trillion"}
_EXTRA = {12: ["dozen"], 0: ["nought", "nil"], 20: ["score"], 144: ["gross"]}


def number_words(n: int) -> list[str]:
    """Headwords for the cardinal `n` (0–99 and round powers), best first; [] when there is none."""
    words: list[str] = []
    if 0 <= n < 20:
        words.append(_UNITS[n])
    elif 20 <= n < 100:
        tens, unit = divmod(n, 10)
        words.append(_TENS[tens] if unit == 0 else f"{_TENS[tens]}-{_UNITS[unit]}")
    if n in _POWERS:
        words.extend([_POWERS[n], f"one {_POWERS[n]}"])
    words.extend(_EXTRA.get(n, []))
    return words


def ordinal_words(n: int) -> list[str]:
    """Headwords for the ordinal `n` (1–99 and round powers)."""
    if 0 <= n < 20:
        return [_ORD_UNITS[n]]
    if 20 <= n < 100:
        tens, unit = divmod(n, 10)
        return [_ORD_TENS[tens] if unit == 0 else f"{_TENS[tens]}-{_ORD_UNITS[unit]}"]
    if n in _POWERS:
        return [_POWERS[n] + "th"]
    return []


def _suffix(n: int) -> str:
    if n % 100 in (11, 12, 13):
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


@lru_cache(maxsize=1)
def numeral_table() -> pl.DataFrame:
    """`(digits, word, sub)`: digit spellings (`12`, `12th`, `1,000`) and their headwords, `sub` = preference."""
    digits: list[str] = []
    words: list[str] = []
    subs: list[int] = []
    for n in [*range(100), *_POWERS, 144]:
        spellings = [str(n)] + ([f"{n:,}"] if n >= 1000 else [])
        for sp in spellings:
            for i, w in enumerate(number_words(n)):
                digits.append(sp)
                words.append(w)
                subs.append(i)
        for i, w in enumerate(ordinal_words(n)):
            digits.append(f"{n}{_suffix(n)}")
            words.append(w)
            subs.append(i)
    return pl.DataFrame({"digits": digits, "word": words, "sub": subs})
