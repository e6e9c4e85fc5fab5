"""The base of the toolkit's small frozen result and config dataclasses."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

__all__ = ["Record"]


class Record:
    """`to_dict()` for a dataclass: the plain JSON-ready dict that `--json` prints.

    Subclasses that hold something `asdict` cannot serialise as is (a tuple that must print as a list,
    a computed field) override it.
    """

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]
