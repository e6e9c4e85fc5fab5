"""GLUE-format TSV files: CoLA's headerless `source, label, original-label, sentence` and the headered
files of SST-2, MRPC, STS-B, RTE (sentence / sentence1 / sentence2 / label / score columns)."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from definitionemb.evaluation.errors import DataFormatError

__all__ = ["GlueTask", "TASKS", "Examples", "read_glue_tsv", "task_files"]

_TEXT_A = ("sentence", "sentence1", "#1 string", "question", "question1")
_TEXT_B = ("sentence2", "#2 string", "question2")
_LABEL = ("label", "score", "quality", "gold_label")


@dataclass(frozen=True)
class GlueTask:
    """A task: its train/dev file names, number of labels (1 = regression) and headline metric."""

    name: str
    train: str
    dev: str
    num_labels: int
    metric: str


TASKS: dict[str, GlueTask] = {
    "cola": GlueTask("cola", "in_domain_train.tsv", "in_domain_dev.tsv", 2, "mcc"),
    "sst2": GlueTask("sst2", "train.tsv", "dev.tsv", 2, "accuracy"),
    "mrpc": GlueTask("mrpc", "train.tsv", "dev.tsv", 2, "f1"),
    "rte": GlueTask("rte", "train.tsv", "dev.tsv", 2, "accuracy"),
    "stsb": GlueTask("stsb", "train.tsv", "dev.tsv", 1, "pearson"),
}


@dataclass(frozen=True)
class Examples:
    """Sentences (and second sentences for pair tasks) with their labels (int, or float for regression)."""

    text_a: tuple[str, ...]
    text_b: tuple[str, ...] | None
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.text_a)

    def head(self, n: int | None) -> Examples:
        if n is None or n >= len(self):
            return self
        return self.part(0, n)

    def part(self, start: int, stop: int | None = None) -> Examples:
        """Examples `start:stop` in file order (e.g. the training file's rows after `max_train`)."""
        b = None if self.text_b is None else self.text_b[start:stop]
        return Examples(self.text_a[start:stop], b, self.labels[start:stop])


def _find(header: list[str], names: tuple[str, ...]) -> int | None:
    low = [h.strip().lower() for h in header]
    for n in names:
        if n in low:
            return low.index(n)
    return None


def read_glue_tsv(
    path: str | os.PathLike[str], regression: bool = False, label_names: tuple[str, ...] | None = None
) -> Examples:
    """Read one GLUE TSV. Headerless 4-column files are CoLA; others need a header naming their columns.

    Non-numeric labels (RTE's `entailment`) are mapped to ids in `label_names` order, or sorted order.
    """
    p = Path(path)
    if not p.is_file():
        raise DataFormatError(f"no GLUE file at {p}")
    with p.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    rows = [r for r in rows if r and any(c.strip() for c in r)]
    if not rows:
        raise DataFormatError(f"{p} is empty")
    header = rows[0]
    ia = _find(header, _TEXT_A)
    il = _find(header, _LABEL)
    if ia is not None and il is not None:
        ib = _find(header, _TEXT_B)
        body = rows[1:]
    elif len(header) == 4:
        ia, ib, il, body = 3, None, 1, rows
    else:
        raise DataFormatError(
            f"{p}: neither CoLA's 4 columns (source, label, original-label, sentence) nor a header with "
            f"sentence/sentence1[/sentence2] and label/score columns; first line: {header!r}"
        )
    need = max(i for i in (ia, ib, il) if i is not None)
    a: list[str] = []
    b: list[str] = []
    raw: list[str] = []
    for no, r in enumerate(body, 2 if body is not rows else 1):
        if len(r) <= need:
            raise DataFormatError(f"{p}:{no}: {len(r)} columns, expected at least {need + 1}")
        a.append(r[ia])
        if ib is not None:
            b.append(r[ib])
        raw.append(r[il].strip())
    if not raw:
        raise DataFormatError(f"{p} has a header but no examples")
    labels: np.ndarray
    try:
        labels = np.asarray([float(x) for x in raw], dtype=np.float64)
        if not regression:
            labels = labels.astype(np.int64)
    except ValueError as exc:
        if regression:
            raise DataFormatError(f"{p}: regression labels must be numbers") from exc
        names = label_names or tuple(sorted(set(raw)))
        unknown = set(raw) - set(names)
        if unknown:
            raise DataFormatError(f"{p}: labels {sorted(unknown)} not in {list(names)}") from exc
        labels = np.asarray([names.index(x) for x in raw], dtype=np.int64)
    return Examples(tuple(a), tuple(b) if ib is not None else None, labels)


def task_files(task: str, data_dir: str | os.PathLike[str]) -> tuple[GlueTask, Path, Path]:
    """The task's spec and its train and dev files inside `data_dir`, checked to exist."""
    if task not in TASKS:
        raise DataFormatError(f"unknown GLUE task {task!r}; choose one of {sorted(TASKS)}")
    spec = TASKS[task]
    d = Path(data_dir)
    train, dev = d / spec.train, d / spec.dev
    for f in (train, dev):
        if not f.is_file():
            raise DataFormatError(
                f"{f} is missing: --data must be the task folder holding {spec.train} and {spec.dev}"
            )
    return spec, train, dev
