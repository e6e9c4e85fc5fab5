"""Progress bars and messages: on a terminal by default, quiet in logs and pipes.

The root `defemb` command sets the mode once (`-q` turns bars off, `--progress` forces them on); every
tqdm bar in the toolkit takes ``disable=bar_disable(progress)``, which leaves the decision to tqdm
(``disable=None``: no bar when stderr is not a terminal) unless a mode or the caller says otherwise.
"""

from __future__ import annotations

__all__ = ["MODES", "bar_disable", "mode", "set_mode"]

MODES = ("auto", "always", "never")
_mode = "auto"


def set_mode(value: str) -> None:
    """`auto` (bars on a terminal only), `always`, or `never`."""
    global _mode
    if value not in MODES:
        raise ValueError(f"progress mode must be one of {', '.join(MODES)}, got {value!r}")
    _mode = value


def mode() -> str:
    return _mode


def bar_disable(progress: bool | None = True) -> bool | None:
    """tqdm's `disable` for a bar its caller wants (`progress` True/None) or not (False)."""
    if progress is False or _mode == "never":
        return True
    if _mode == "always":
        return False
    return None
