"""Requests that arrive together are answered together: :class:`Batcher`.

A reverse query spends most of its time in two encoder passes whose cost grows slowly with the number of
texts (the demo run: 12 ms for one query, 77 ms for sixteen). Concurrent requests therefore wait for one
call over all of them rather than queueing one by one. No thread of its own: the request that takes the
run lock answers everyone waiting with the same key (its own item first); the others sleep on the lock
meanwhile, and whoever takes it next finds its answer ready or runs the next batch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Batcher"]

Item = TypeVar("Item")
Answer = TypeVar("Answer")


@dataclass
class _Job(Generic[Item, Answer]):
    key: Hashable
    item: Item
    done: bool = False  # set by the batch's runner, read after taking the run lock
    answer: Answer | None = None
    error: BaseException | None = None  # set by the batch's runner, read after taking the run lock


class Batcher(Generic[Item, Answer]):
    """`submit(key, item)` returns `answer(key, items)[i]` for its item, computed in one call with
    whatever else was submitted under the same key while the previous call ran.

    `answer` must return one answer per item, in order. If a batch of several fails, each of its items
    is asked alone, so one bad item fails only its own request. `max_batch` bounds one call. One call
    runs at a time (two side by side measured no faster on 2 cores: benchmarks/RESULTS.md).
    """

    def __init__(
        self,
        answer: Callable[[Hashable, Sequence[Item]], Sequence[Answer]],
        max_batch: int = 32,
    ) -> None:
        self._answer = answer
        self.max_batch = max_batch
        self._pending: list[_Job[Item, Answer]] = []
        self._queue = threading.Lock()  # guards _pending
        self._run = threading.Lock()  # one batch at a time
        self.batches = 0  # calls made and items answered: how much batching happened
        self.items = 0

    def submit(self, key: Hashable, item: Item) -> Answer:
        job: _Job[Item, Answer] = _Job(key, item)
        with self._queue:
            self._pending.append(job)
        with self._run:
            if not job.done:
                with self._queue:
                    others = [j for j in self._pending if j.key == key and j is not job]
                    batch = [job, *others[: self.max_batch - 1]]
                    taken = {id(j) for j in batch}
                    self._pending = [j for j in self._pending if id(j) not in taken]
                self._call(key, batch)
        if job.error is not None:
            raise job.error
        return job.answer  # type: ignore[return-value]

    def _call(self, key: Hashable, batch: list[_Job[Item, Answer]]) -> None:
        self.batches += 1
        self.items += len(batch)
        try:
            answers = self._answer(key, [j.item for j in batch])
            if len(answers) != len(batch):
                raise RuntimeError(f"{len(answers)} answers for {len(batch)} items")
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error = exc
                batch[0].done = True
                return
            for j in batch:  # find whose item failed: each alone
                self._call(key, [j])
            return
        for j, a in zip(batch, answers, strict=True):
            j.answer = a
            j.done = True
