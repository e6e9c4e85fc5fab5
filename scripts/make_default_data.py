"""Rebuild `definitionemb/data/open-dictionary-minilm.tar.gz`, the embedded default lexicon of `defemb run`.

It is a slice of Open Dictionary (Wiktionary content, CC BY-SA) in Open Dictionary's own folder layout:
every word that is a word-initial piece of all-MiniLM-L6-v2's WordPiece vocabulary, plus the lemmas their
form-of senses point to ("plural of X"), with at most MAX_SENSES senses per part of speech, so the default
run covers the default model's vocabulary well and still fits in a few MB.

    python scripts/make_default_data.py ../shared/data/wiktionary/open-dictionary/api tests/data/minilm-tokenizer/vocab.txt
"""

from __future__ import annotations

import io
import json
import re
import sys
import tarfile
from collections import defaultdict
from pathlib import Path

MAX_SENSES = 6
OUT = Path(__file__).resolve().parents[1] / "definitionemb" / "data" / "open-dictionary-minilm.tar.gz"
_OF = re.compile(r"\b(?:of|form of)\s+([a-z][a-z'-]*)\W*$", re.IGNORECASE)


def main(api: Path, vocab_txt: Path) -> None:
    vocab = [line.rstrip("\n") for line in vocab_txt.open(encoding="utf-8")]
    wanted = {v for v in vocab if not v.startswith(("##", "[")) and v}
    od: dict[str, dict] = {}
    for f in sorted(api.glob("*/*.json")):
        od.update(json.loads(f.read_text(encoding="utf-8")))

    def trimmed(word: str) -> dict:
        entry = od[word]
        etys = []
        for ety in entry["etymologies"]:
            poss = [{**p, "senses": p["senses"][:MAX_SENSES]} for p in ety["partsOfSpeech"]]
            etys.append({**ety, "partsOfSpeech": poss})
        return {**entry, "etymologies": etys}

    keep = {w for w in wanted if w in od}
    lemmas = set()
    for w in keep:
        for ety in od[w]["etymologies"]:
            for p in ety["partsOfSpeech"]:
                for s in p["senses"][:MAX_SENSES]:
                    m = _OF.search(s["sense"])
                    if m and m.group(1).lower() in od:
                        lemmas.add(m.group(1).lower())
    keep |= lemmas
    files: dict[str, dict] = defaultdict(dict)
    for w in sorted(keep):
        files[f"{w[0]}/{w[:2] if len(w) > 1 else w}.json"][w] = trimmed(w)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=9) as tar:
        for name in sorted(files):
            data = json.dumps(files[name], ensure_ascii=False, sort_keys=True).encode()
            info = tarfile.TarInfo(f"open-dictionary-minilm/{name}")
            info.size = len(data)
            info.mtime = 0  # reproducible archive bytes
            tar.addfile(info, io.BytesIO(data))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(buf.getvalue())
    n_senses = sum(
        len(p["senses"])
        for d in files.values()
        for e in d.values()
        for y in e["etymologies"]
        for p in y["partsOfSpeech"]
    )
    print(
        json.dumps(
            {
                "words": len(keep),
                "lemmas_added": len(lemmas - wanted),
                "senses": n_senses,
                "files": len(files),
                "bytes": OUT.stat().st_size,
                "out": str(OUT),
            }
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
