"""Lexicon ingest speed: kaikki JSONL (plain and .gz) and the whole Open Dictionary.

Run from the repository root::

    .venv/bin/python -m benchmarks.bench_lexicon_ingest [--mb 400] [--gz-mb 100] [--only-extras]

First the cost of lexicon schema 2 (every example, etymology, sense ids, relations) against the same
build without them (`extras=False`, schema 1's content), alternated on one file.

A kaikki file of about ``--mb`` MB is built in a temporary folder from the real sample entries in
tests/data/kaikki (each copy gets its own word, so entries differ), then timed three ways in the same run:
plain-Python ``json.loads`` per line (baseline), DuckDB's bare ``read_json`` count (reference ceiling),
and ``lexicon.build`` (everything: parse, normalise, hash, insert, de-duplicate, commit). One JSON line
per measurement: ``{"bench", "value", "unit", "baseline", "ratio", ...}``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import tempfile
import time
import zlib
from pathlib import Path

import duckdb
from definitionemb.lexicon.builder import build

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "tests" / "data" / "kaikki"
OPEN_DICTIONARY = ROOT.parent / "shared" / "data" / "wiktionary" / "open-dictionary" / "api"


def _emit(bench: str, value: float, unit: str, baseline: float | None, **extra: object) -> None:
    ratio = round(value / baseline, 2) if baseline else None
    print(
        json.dumps(
            {
                "bench": bench,
                "value": round(value, 1),
                "unit": unit,
                "baseline": round(baseline, 1) if baseline else None,
                "ratio": ratio,
                **extra,
            }
        ),
        flush=True,
    )


def make_kaikki(path: Path, megabytes: float) -> int:
    """Write ~`megabytes` MB of kaikki JSONL made of the real sample entries with varied words."""
    entries = [
        json.loads(line)
        for f in sorted(SAMPLES.glob("*.jsonl"))
        for line in f.read_text("utf-8").splitlines()
    ]
    target = int(megabytes * 1e6)
    written = 0
    i = 0
    with open(path, "w", encoding="utf-8") as out:
        while written < target:
            e = entries[i % len(entries)]
            line = json.dumps({**e, "word": f"{e['word']}{i}"}, ensure_ascii=False) + "\n"
            out.write(line)
            written += len(line.encode("utf-8"))
            i += 1
    return i


def _cpu() -> float:
    """CPU seconds of this process and its finished children (worker processes included)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


_CPU: dict[str, float] = {}  # CPU seconds of the last timed run, by function


def time_json_loads(path: Path) -> float:
    c, t = _cpu(), time.perf_counter()
    with open(path, "rb") as f:
        for line in f:
            json.loads(line)
    _CPU["json_loads"] = _cpu() - c
    return time.perf_counter() - t


def time_duckdb_count(path: Path, function: str = "read_json") -> float:
    """DuckDB's bare count: `read_json` (schema auto-detected) or `read_ndjson_objects` (no schema)."""
    con = duckdb.connect()
    extra = ", format='newline_delimited'" if function == "read_json" else ""
    t = time.perf_counter()
    con.execute(
        f"SELECT count(*) FROM {function}(?{extra}, maximum_object_size=268435456)", [str(path)]
    ).fetchall()
    dt = time.perf_counter() - t
    con.close()
    return dt


def time_build(spec: str, db: Path, extras: bool = True) -> tuple[float, dict]:
    c, t = _cpu(), time.perf_counter()
    rep = build(db, [spec], progress=False, extras=extras).to_dict()["sources"][0]
    _CPU["build"] = _cpu() - c
    return time.perf_counter() - t, rep


def bench_kaikki(tmp: Path, megabytes: float, gz_megabytes: float) -> None:
    plain = tmp / "kaikki-bench.jsonl"
    n = make_kaikki(plain, megabytes)
    size_mb = plain.stat().st_size / 1e6
    plain.read_bytes()  # warm the page cache so every contender reads from memory
    t_json = time_json_loads(plain)
    t_duck = time_duckdb_count(plain)
    t_objects = time_duckdb_count(plain, "read_ndjson_objects")
    t_build, rep = time_build(f"kaikki:{plain}", tmp / "a.duckdb")
    assert rep["records"] == n == rep["loaded"], rep
    py_rate, duck_rate, rate = size_mb / t_json, size_mb / t_duck, size_mb / t_build
    _emit("kaikki_jsonl_json_loads", py_rate, "MB/s", None, mb=round(size_mb), lines=n)
    _emit("kaikki_jsonl_duckdb_read_json_count", duck_rate, "MB/s", None, mb=round(size_mb))
    _emit(
        "kaikki_jsonl_duckdb_read_ndjson_objects_count", size_mb / t_objects, "MB/s", None, mb=round(size_mb)
    )
    _emit(
        "kaikki_jsonl_build",
        rate,
        "MB/s",
        py_rate,
        baseline_name="json.loads",
        mb=round(size_mb),
        lines=n,
        seconds=round(t_build, 2),
    )
    # On a shared machine wall time depends on the neighbours; CPU seconds much less so.
    _emit(
        "kaikki_jsonl_build_per_cpu_second",
        size_mb / _CPU["build"],
        "MB per CPU-s",
        size_mb / _CPU["json_loads"],
        baseline_name="json.loads per CPU-s",
        build_cpu_s=round(_CPU["build"], 2),
        json_loads_cpu_s=round(_CPU["json_loads"], 2),
    )
    _emit(
        "kaikki_jsonl_build_vs_duckdb_count", rate, "MB/s", duck_rate, baseline_name="duckdb read_json count"
    )
    _emit(
        "kaikki_jsonl_build_vs_duckdb_objects",
        rate,
        "MB/s",
        size_mb / t_objects,
        baseline_name="duckdb read_ndjson_objects count",
    )

    # .gz: a smaller file (compressing is slow); rates per compressed and per decompressed MB
    part = tmp / "kaikki-gz-src.jsonl"
    m = make_kaikki(part, gz_megabytes)
    raw = part.read_bytes()
    gz = tmp / "kaikki-bench.jsonl.gz"
    gz.write_bytes(gzip.compress(raw, compresslevel=6))
    gz_mb, raw_mb = gz.stat().st_size / 1e6, len(raw) / 1e6
    t = time.perf_counter()
    d = zlib.decompressobj(wbits=31)
    with open(gz, "rb") as f:
        while chunk := f.read(1 << 20):
            d.decompress(chunk)
    t_unzip = time.perf_counter() - t
    t_gz, rep = time_build(f"kaikki:{gz}", tmp / "b.duckdb")
    assert rep["records"] == m == rep["loaded"], rep
    _emit(
        "kaikki_jsonl_gz_build",
        raw_mb / t_gz,
        "MB/s (decompressed)",
        raw_mb / t_unzip,
        baseline_name="zlib decompress alone",
        compressed_mb_per_s=round(gz_mb / t_gz, 1),
        mb=round(raw_mb),
        gz_mb=round(gz_mb),
    )


def bench_schema_extras(tmp: Path, megabytes: float, rounds: int) -> None:
    """Schema 2 keeps every example, etymology text, sense ids and relations; `extras=False` decodes and
    stores only what schema 1 kept (the same msgspec fast path as before). Both on the same file,
    alternated `rounds` times, best of each (the machine is shared)."""
    plain = tmp / "kaikki-extras.jsonl"
    n = make_kaikki(plain, megabytes)
    size_mb = plain.stat().st_size / 1e6
    plain.read_bytes()
    best: dict[bool, tuple[float, float]] = {}
    for i in range(rounds):
        for extras in (False, True):
            db = tmp / f"x{i}-{int(extras)}.duckdb"
            t, rep = time_build(f"kaikki:{plain}", db, extras=extras)
            assert rep["loaded"] == n, rep
            cpu = _CPU["build"]
            prev = best.get(extras)
            best[extras] = (min(t, prev[0]), min(cpu, prev[1])) if prev else (t, cpu)
            if extras and i == rounds - 1:
                con = duckdb.connect(str(db), read_only=True)
                t0 = time.perf_counter()
                n_links = con.execute("SELECT count(*) FROM relation").fetchall()[0][0]
                t_view = time.perf_counter() - t0
                con.close()
            db.unlink()
    _emit(
        "kaikki_jsonl_build_schema2_extras",
        size_mb / best[True][0],
        "MB/s",
        size_mb / best[False][0],
        baseline_name="the same build without extras (schema 1 content)",
        mb=round(size_mb),
        lines=n,
        rounds=rounds,
        seconds=round(best[True][0], 2),
        baseline_seconds=round(best[False][0], 2),
        cost=round(best[True][0] / best[False][0] - 1, 3),
    )
    _emit(
        "kaikki_jsonl_build_schema2_extras_cpu",
        best[True][1],
        "CPU-s",
        best[False][1],
        baseline_name="CPU-s without extras",
        cpu_s=round(best[True][1], 3),
        baseline_cpu_s=round(best[False][1], 3),
        cost=round(best[True][1] / best[False][1] - 1, 3),
    )
    _view_note(n_links, t_view, size_mb)


def _view_note(n_links: int, seconds: float, size_mb: float) -> None:
    _emit(
        "kaikki_relation_view_scan",
        n_links / seconds,
        "links/s",
        None,
        links=n_links,
        seconds=round(seconds, 3),
    )


def bench_open_dictionary(tmp: Path) -> None:
    if not OPEN_DICTIONARY.is_dir():
        print(json.dumps({"bench": "open_dictionary_build", "skipped": f"{OPEN_DICTIONARY} is absent"}))
        return
    files = sorted(p for p in OPEN_DICTIONARY.rglob("*.json") if p.name != "valid_words.json")
    t = time.perf_counter()
    n_senses = 0
    for f in files:
        for w in json.loads(f.read_bytes()).values():
            n_senses += sum(len(p["senses"]) for e in w["etymologies"] for p in e["partsOfSpeech"])
    t_json = time.perf_counter() - t
    t_build, rep = time_build(f"open-dictionary:{OPEN_DICTIONARY}", tmp / "od.duckdb")
    con = duckdb.connect(str(tmp / "od.duckdb"), read_only=True)
    kept = con.execute("SELECT count(*) FROM sense").fetchall()[0][0]
    con.close()
    _emit(
        "open_dictionary_build_cpu",
        _CPU["build"],
        "CPU-s",
        None,
        wall_s=round(t_build, 2),
    )
    _emit(
        "open_dictionary_build",
        t_build,
        "s",
        t_json,
        baseline_name="json.loads of all files (s)",
        words=rep["loaded"],
        senses_in=n_senses,
        senses_kept=kept,
        senses_per_s=round(n_senses / t_build),
    )


def _load_note() -> None:
    """The machine is shared: print its load so numbers can be read in context."""
    try:
        load1 = float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError):
        return
    print(
        json.dumps(
            {"bench": "machine_load_1min", "value": load1, "unit": "runnable tasks", "cores": os.cpu_count()}
        ),
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=400, help="size of the plain kaikki file (MB)")
    ap.add_argument("--gz-mb", type=float, default=100, help="decompressed size of the .gz file (MB)")
    ap.add_argument("--extras-mb", type=float, default=100, help="size of the file of the schema-2 cost (MB)")
    ap.add_argument("--extras-rounds", type=int, default=3, help="alternated builds with and without extras")
    ap.add_argument("--only-extras", action="store_true", help="measure only the cost of schema 2's extras")
    args = ap.parse_args()
    _load_note()
    with tempfile.TemporaryDirectory(prefix="bench-lexicon-") as d:
        tmp = Path(d)
        bench_schema_extras(tmp, args.extras_mb, args.extras_rounds)
        if args.only_extras:
            _load_note()
            return
        bench_kaikki(tmp, args.mb, args.gz_mb)
        bench_open_dictionary(tmp)
    _load_note()


if __name__ == "__main__":
    main()
