"""`wiktionary-dump:` on the real test dump through wiktextract (installed by `make dump-deps`)."""

from __future__ import annotations

import bz2
import sys
from pathlib import Path

import pytest
from definitionemb.lexicon.builder import build
from definitionemb.lexicon.errors import SourceError
from definitionemb.lexicon.sources import wiktionary_dump
from definitionemb.lexicon.sources.wiktionary_dump import WiktionaryDumpSource, wiktextract_unavailable

from definitionemb import lexicon

DUMP = Path(__file__).parent / "data" / "wiktionary" / "enwiktionary-test-pages-articles.xml.bz2"
# `make dump-deps` leaves this stamp: where it is, the dump test must run, never skip.
STAMP = Path(sys.prefix) / ".dump-deps"


def _tiny_dump(tmp_path: Path) -> Path:
    dump = tmp_path / "enwiktionary-pages-articles.xml.bz2"
    dump.write_bytes(
        bz2.compress(b'<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/"></mediawiki>')
    )
    return dump


def test_without_the_extra_the_source_is_refused_naming_make_dump_deps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wiktionary_dump, "find_spec", lambda name: None)
    with pytest.raises(SourceError, match=r"wiktextract package is not installed.*make dump-deps.*kaikki:"):
        build(tmp_path / "lex.duckdb", [f"wiktionary-dump:{_tiny_dump(tmp_path)}"], progress=False)
    assert not (tmp_path / "lex.duckdb").exists()


def test_without_brown_the_source_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wiktionary_dump, "_brown_installed", lambda: False)
    with pytest.raises(SourceError, match=r"Brown corpus.*make dump-deps"):
        build(tmp_path / "lex.duckdb", [f"wiktionary-dump:{_tiny_dump(tmp_path)}"], progress=False)


def test_bad_worker_count_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if wiktextract_unavailable() is not None:
        pytest.skip("needs the dump extra")
    monkeypatch.setenv("DEFEMB_DUMP_WORKERS", "zero")
    with pytest.raises(SourceError, match="DEFEMB_DUMP_WORKERS"):
        WiktionaryDumpSource(_tiny_dump(tmp_path), "en")


@pytest.mark.slow
def test_the_real_test_dump_through_wiktextract(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    why = wiktextract_unavailable()
    if why is not None:
        if STAMP.exists():
            pytest.fail(f"make dump-deps ran here, yet wiktextract cannot run: {why}")
        pytest.skip(f"{why}; run make dump-deps")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DEFEMB_DUMP_WORKERS", "2")
    seen: dict[str, object] = {}
    read = WiktionaryDumpSource.read

    def spy(self: WiktionaryDumpSource, sink, progress):  # type: ignore[no-untyped-def]
        ticks: list[int] = []
        sha = read(self, sink, lambda n: (ticks.append(n), progress(n)))
        seen.update(src=self, ticks=ticks, sink=sink)
        return sha

    monkeypatch.setattr(WiktionaryDumpSource, "read", spy)
    db = tmp_path / "lex" / "lexicon.duckdb"
    db.parent.mkdir()
    rep = build(db, [f"wiktionary-dump:{DUMP}"], progress=False).sources[0]
    src, ticks = seen["src"], seen["ticks"]
    assert isinstance(src, WiktionaryDumpSource) and isinstance(ticks, list)
    assert sum(ticks) == src.total_bytes and len(ticks) > 1  # the bar moved while wiktextract ran
    assert src.pages > 1000  # from wiktextract's "N/M pages" lines
    assert rep.kind == "wiktionary-dump" and len(rep.sha256) == 64
    assert rep.records == rep.loaded + rep.rejected + sum(rep.filtered.values())
    assert rep.records > 1500 and rep.loaded > 1500
    # wiktextract's temp.* debug files and its log stayed in the private working folder, now gone
    assert [p.name for p in tmp_path.iterdir()] == ["lex"]
    assert len(capsys.readouterr().err) < 10_000  # its ~1 MB of debug output did not reach the terminal
    senses = lexicon.query(
        str(db),
        "SELECT e.word, e.pos, s.gloss FROM sense s JOIN entry e USING (entry_id) WHERE e.word = 'dictionary'",
    )
    assert senses.height >= 2 and senses["gloss"].str.contains("(?i)reference work|word").any()
    stored = lexicon.query(str(db), "SELECT n_records, n_loaded, n_rejected, n_filtered FROM source")
    assert stored.row(0) == (rep.records, rep.loaded, rep.rejected, sum(rep.filtered.values()))
