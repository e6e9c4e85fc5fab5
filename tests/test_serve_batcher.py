"""The serve's request batcher: answers as if each item were asked alone, one bad item fails alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from definitionemb.serve.batcher import Batcher


def _square_all(calls: list[tuple[Hashable, int]]) -> Batcher[int, int]:
    def answer(key: Hashable, items: Sequence[int]) -> list[int]:
        calls.append((key, len(items)))
        time.sleep(0.02)  # long enough for the other threads to queue behind this call
        if any(i < 0 for i in items):
            raise ValueError(f"negative item in {list(items)}")
        return [i * i * (1 if key == "plus" else -1) for i in items]

    return Batcher(answer, max_batch=8)


def test_concurrent_items_are_answered_in_few_calls_each_as_if_alone() -> None:
    calls: list[tuple[Hashable, int]] = []
    b = _square_all(calls)
    items = list(range(24))
    barrier = threading.Barrier(len(items))

    def ask(i: int) -> int:
        barrier.wait()
        return b.submit("plus" if i % 2 else "minus", i)

    with ThreadPoolExecutor(len(items)) as pool:
        got = list(pool.map(ask, items))
    assert got == [i * i * (1 if i % 2 else -1) for i in items]
    assert b.items == 24 and sum(n for _, n in calls) == 24
    assert len(calls) < 24 and max(n for _, n in calls) <= 8  # batched, within max_batch
    assert all(key in ("plus", "minus") for key, _ in calls)


def test_one_bad_item_fails_only_its_own_request() -> None:
    calls: list[tuple[Hashable, int]] = []
    b = _square_all(calls)
    items = [3, -1, 4, 5]
    barrier = threading.Barrier(len(items))

    def ask(i: int) -> int | str:
        barrier.wait()
        try:
            return b.submit("plus", i)
        except ValueError as exc:
            return str(exc)

    with ThreadPoolExecutor(len(items)) as pool:
        got = list(pool.map(ask, items))
    assert got == [9, "negative item in [-1]", 16, 25]


def test_an_answer_of_the_wrong_length_is_an_error_not_a_wrong_answer() -> None:
    b: Batcher[int, int] = Batcher(lambda key, items: [], max_batch=4)
    with pytest.raises(RuntimeError, match="0 answers for 1 items"):
        b.submit("k", 1)
