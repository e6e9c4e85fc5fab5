"""What hashing every byte of a vectors file costs: the staleness digest of indexes and `policy.json`.

Run from the repository root::

    .venv/bin/python -m benchmarks.bench_digest [--size-mb N]

`index.faiss_index.source_digest` is `core.fileio.content_digest`: sha256 over every byte, so one NaN row
anywhere makes an index stale (issue 24; it used to sample 64 slices of 64 KiB). Measured in one run on
a seeded float32 file of N MiB (default 1024, a 350k×768 matrix) and on the demo's size (MiniLM,
30,522×384):

* `digest_full_<N>MiB`: the full digest from the page cache (the file was just written), baseline a plain
  read of the same bytes in the same block size — the ratio is what hashing adds to reading;
* `digest_sampled_<N>MiB`: the old sampled digest (64 × 64 KiB), for scale;
* `digest_memo_<N>MiB`: a second call in the same process (size, mtime, ctime and inode unchanged:
  remembered, no read).

Prints one JSON object per line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from definitionemb.core.fileio import content_digest, file_sha256

_BLOCK = 1 << 22  # the block size file_sha256 reads in


def _read_only(path: Path) -> None:
    with open(path, "rb") as fh:
        while fh.read(_BLOCK):
            pass


def _sampled(path: Path, samples: int = 64, chunk: int = 1 << 16) -> str:
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as fh:
        for offset in range(0, size, max(size // samples, 1)):
            fh.seek(offset)
            h.update(fh.read(chunk))
    return h.hexdigest()


def _best(fn, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _measure(path: Path, label: str) -> list[dict[str, object]]:
    gb = path.stat().st_size / 1e9
    _read_only(path)  # into the page cache
    read_s = _best(lambda: _read_only(path))
    full_s = _best(lambda: file_sha256(path))  # what content_digest runs when the file is new to it
    sampled_s = _best(lambda: _sampled(path))
    content_digest(path)
    memo_s = _best(lambda: content_digest(path))
    return [
        {
            "name": f"digest_full_{label}",
            "seconds": round(full_s, 4),
            "gb_per_s": round(gb / full_s, 3),
            "baseline": "read only",
            "baseline_seconds": round(read_s, 4),
            "ratio": round(full_s / read_s, 2),
        },
        {
            "name": f"digest_sampled_{label}",
            "seconds": round(sampled_s, 5),
            "baseline": "full digest",
            "ratio": round(sampled_s / full_s, 4),
        },
        {
            "name": f"digest_memo_{label}",
            "seconds": round(memo_s, 6),
            "baseline": "full digest",
            "ratio": round(memo_s / full_s, 6),
        },
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=1024)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="bench-digest-", dir=os.environ.get("BENCH_TMP")) as tmp:
        for label, rows, dim in (
            (f"{args.size_mb}MiB", args.size_mb * (1 << 20) // (768 * 4), 768),
            ("minilm_30522x384", 30522, 384),
        ):
            path = Path(tmp) / f"{label}.npy"
            with open(path, "wb") as fh:
                step = 8192
                np.lib.format.write_array_header_1_0(
                    fh, {"descr": "<f4", "fortran_order": False, "shape": (rows, dim)}
                )
                for lo in range(0, rows, step):
                    fh.write(rng.standard_normal((min(step, rows - lo), dim), dtype=np.float32).tobytes())
            for rec in _measure(path, label):
                print(json.dumps(rec), flush=True)
            path.unlink()


if __name__ == "__main__":
    main()
