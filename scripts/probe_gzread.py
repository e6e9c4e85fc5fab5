"""The kaikki reader alone on a `.jsonl.gz` file: CPU seconds of `KaikkiSource.read` against bare zlib.

Re-creates the reader-alone check of the i12 ingest pass (benchmarks/HISTORY.md, "Ingest after the
hostile-input fixes"): the reader without DuckDB, timed in process CPU time, which moves far less with
the load of a shared machine than wall time. The file is built like `bench_lexicon_ingest` builds its
own (real sample entries of tests/data/kaikki, each copy with its own word) unless `--file` is given.
Baseline in the same run: decompressing the same file with `zlib` alone. Files under the reader's
parallel threshold (64 MB of text) are read in this process, so its CPU time is the whole cost.

    .venv/bin/python scripts/probe_gzread.py [--mb 40] [--rounds 3] [--file F.jsonl.gz]

One JSON line per round: ``{"bench", "value", "unit", "baseline", "ratio", ...}``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `benchmarks` is a folder of this repository, not an installed package

from definitionemb.lexicon.sources.kaikki import KaikkiSource  # noqa: E402
from definitionemb.lexicon.sources.sink import Columns, Sink  # noqa: E402

from benchmarks.bench_lexicon_ingest import make_kaikki  # noqa: E402


def read_cpu(path: Path) -> tuple[float, int]:
    """CPU seconds of one `KaikkiSource.read` of `path` into a sink that keeps nothing; records loaded."""

    def flush(cols: Columns) -> None:  # the reader's batches, dropped: DuckDB is not what is timed
        pass

    sink = Sink(flush)
    t = time.process_time()
    KaikkiSource(path, "en").read(sink, lambda n: None)
    sink.flush()
    return time.process_time() - t, sink.loaded


def zlib_cpu(path: Path) -> float:
    """CPU seconds of decompressing `path` with zlib alone, in 1 MiB pieces (the baseline)."""
    t = time.process_time()
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            d.decompress(block)
    d.flush()
    return time.process_time() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=40, help="decompressed size of the built file (MB)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--file", type=Path, default=None, help="an existing kaikki .jsonl.gz instead")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="defemb-gzread-"))
    try:
        path = args.file
        if path is None:
            plain = tmp / "kaikki.jsonl"
            make_kaikki(plain, args.mb)
            path = tmp / "kaikki.jsonl.gz"
            with open(plain, "rb") as src, gzip.open(path, "wb", compresslevel=6) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            plain.unlink()
        for r in range(args.rounds):
            base = zlib_cpu(path)
            cpu, loaded = read_cpu(path)
            line = {
                "bench": "kaikki_reader_cpu_gz",
                "round": r + 1,
                "value": round(cpu, 3),
                "unit": "CPU-s",
                "baseline": round(base, 3),
                "baseline_name": "zlib decompression alone",
                "ratio": round(cpu / base, 2) if base > 0 else None,
                "records_loaded": loaded,
                "file_bytes": path.stat().st_size,
            }
            print(json.dumps(line), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
