"""Cut a lexicon down to the reverse-dictionary development targets plus a random sample of other words.

Used by `benchmarks/bench_reverse.py` when encoding every gloss of the full lexicon is too slow for the
machine (the subset pass in benchmarks/HISTORY.md, "Reverse dictionary (… subset, superseded)"). The copy
keeps every table; only the senses of words outside {targets of hill-seen-500} ∪ {a `fraction` sample,
seeded} are deleted, so the lexicon fingerprint (its sources) is unchanged and a run made on the full
lexicon accepts it::

    python scripts/reverse_subset_lexicon.py FULL.duckdb SUB.duckdb 0.08 0
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import duckdb
import numpy as np

DEV = Path(__file__).resolve().parents[1].parent / "shared/data/eval/reverse-dictionary/hill-seen-500.json"


def main(argv: list[str]) -> int:
    full, out, frac, seed = argv[0], argv[1], float(argv[2]), int(argv[3])
    if Path(out).exists():
        print(f"{out} exists; choose a new path", file=sys.stderr)
        return 1
    shutil.copy(full, out)
    con = duckdb.connect(out)
    targets = {d["word"] for d in json.loads(DEV.read_text(encoding="utf-8"))}
    words = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT e.word FROM entry e JOIN sense s USING (entry_id) WHERE s.gloss IS NOT NULL ORDER BY 1"
        ).fetchall()
    ]
    rng = np.random.default_rng(seed)
    keep = {w for w in words if w in targets} | {
        w for w, r in zip(words, rng.random(len(words)), strict=True) if r < frac
    }
    con.execute("CREATE TEMP TABLE keep(word VARCHAR)")
    con.executemany("INSERT INTO keep VALUES (?)", [[w] for w in sorted(keep)])
    con.execute(
        "DELETE FROM sense WHERE entry_id IN (SELECT entry_id FROM entry WHERE word NOT IN (SELECT word FROM keep))"
    )
    n = con.execute("SELECT count(*) FROM sense WHERE gloss IS NOT NULL").fetchone()[0]
    print(f"words {len(words)}, kept {len(keep)} ({len(keep & targets)} targets), senses {n}")
    con.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
