-- definitionemb lexicon schema. The database is rebuilt, never migrated: `meta` holds the schema
-- version, and lexicon.db refuses a file whose version differs, naming the command that rebuilds it.
-- Large tables carry no PRIMARY KEY constraints: ids are assigned by the loader and DuckDB's ART
-- indexes would slow bulk appends several-fold.

CREATE TABLE IF NOT EXISTS meta (
    key   VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);

-- One row per loaded input file (or folder). sha256 identifies content, so the same file twice adds nothing.
CREATE TABLE IF NOT EXISTS source (
    source_id   INTEGER PRIMARY KEY,
    kind        VARCHAR NOT NULL,           -- kaikki | open-dictionary | tsv | wiktionary-dump
    uri         VARCHAR NOT NULL,
    sha256      VARCHAR NOT NULL UNIQUE,
    lang_code   VARCHAR,
    n_records   BIGINT NOT NULL,            -- = n_loaded + n_rejected + n_filtered
    n_loaded    BIGINT NOT NULL,
    n_rejected  BIGINT NOT NULL,
    n_filtered  BIGINT NOT NULL,
    seconds     DOUBLE,
    normaliser  VARCHAR,                    -- lexicon.normalise.VERSION used for the glosses
    loaded_at   TIMESTAMP DEFAULT current_timestamp
);

-- Records skipped on purpose (another language, no senses, ...), counted by reason.
CREATE TABLE IF NOT EXISTS filtered (
    source_id INTEGER NOT NULL,
    reason    VARCHAR NOT NULL,
    n         BIGINT NOT NULL
);

-- Malformed records, kept with their location so nothing is lost.
CREATE TABLE IF NOT EXISTS reject (
    source_id   INTEGER NOT NULL,
    record_no   BIGINT NOT NULL,            -- 1-based line / record number within the source
    location    VARCHAR,                    -- file (inside a folder source) and byte offset
    reason      VARCHAR NOT NULL,
    raw         VARCHAR                     -- the record, cut to 64 KiB
);

-- A dictionary entry: one word, one part of speech, one etymology.
CREATE TABLE IF NOT EXISTS entry (
    entry_id     BIGINT NOT NULL,
    source_id    INTEGER NOT NULL,
    record_no    BIGINT NOT NULL,
    word         VARCHAR NOT NULL,
    lang_code    VARCHAR NOT NULL,
    pos          VARCHAR,                   -- normalised: noun, verb, adj, adv, name, ...
    etymology_no INTEGER,
    redirects    VARCHAR[],
    etymology_text VARCHAR                  -- kaikki's etymology_text, as written (schema 2)
);

-- Inflected and other forms of an entry ("brought" of "bring"), for lemma look-ups.
CREATE TABLE IF NOT EXISTS form (
    entry_id BIGINT NOT NULL,
    form     VARCHAR NOT NULL,
    tags     VARCHAR[]
);

CREATE TABLE IF NOT EXISTS sense (
    sense_id     BIGINT NOT NULL,
    entry_id     BIGINT NOT NULL,
    ord          INTEGER NOT NULL,          -- 0-based order within the entry
    gloss        VARCHAR NOT NULL,          -- normalised text (lexicon.normalise)
    raw_gloss    VARCHAR,                   -- as the source wrote it
    tags         VARCHAR[],                 -- includes qualifiers moved out of the gloss
    topics       VARCHAR[],
    form_of      VARCHAR,                   -- target word of "plural of cat"
    alt_of       VARCHAR,                   -- target word of "alternative form of ..."
    example      VARCHAR,                   -- the first of `examples`
    user_defined BOOLEAN NOT NULL DEFAULT false,
    examples     VARCHAR[],                 -- every usage example, in source order (schema 2)
    wiktionary_id VARCHAR,                  -- kaikki's sense `id` (links back to the Wiktionary sense)
    senseids     VARCHAR[],                 -- kaikki's `senseid` list (e.g. en:Q23622)
    wikidata     VARCHAR[]                  -- Wikidata item ids of the sense (Q23622)
);

-- Lexical relations as the source gives them (kaikki's synonyms, antonyms, hypernyms, derived, ...):
-- from an entry, or from one of its senses (sense_id set), one row per (holder, kind) with the links as
-- the source's JSON list; the `relation` view has one row per linked word (schema 2). Stored packed
-- because unpacking 60 links per record at ingest cost more than the rest of the extras together.
CREATE TABLE IF NOT EXISTS relation_links (
    entry_id BIGINT NOT NULL,
    sense_id BIGINT,                        -- NULL: the relation belongs to the whole entry
    kind     VARCHAR NOT NULL,              -- synonyms | antonyms | hypernyms | hyponyms | derived | ...
    links    VARCHAR NOT NULL               -- JSON list of {"word": ..., "sense": ...}
);

-- kind, from (entry, sense), to word; note = the source's disambiguation ("sense" of the link), if any.
-- A link without a word, or not shaped {"word": ...}, is left out.
CREATE OR REPLACE VIEW relation AS
SELECT entry_id, sense_id, kind, trim(link.word) AS word, link.sense AS note
FROM (
    SELECT entry_id, sense_id, kind,
           unnest(json_transform(links, '[{"word": "VARCHAR", "sense": "VARCHAR"}]')) AS link
    FROM relation_links
)
WHERE link.word IS NOT NULL AND trim(link.word) <> '';

CREATE TABLE IF NOT EXISTS tokenizer (
    tokenizer_id     INTEGER PRIMARY KEY,
    name             VARCHAR NOT NULL,      -- folder or hub name as given
    kind             VARCHAR NOT NULL,      -- bpe | wordpiece | sentencepiece
    vocab_size       INTEGER NOT NULL,
    sha256           VARCHAR NOT NULL UNIQUE, -- lexicon.tokenizers.vocab_fingerprint
    frequency_source VARCHAR,               -- dict.txt path | corpus | vocab-order
    aligned_at       TIMESTAMP
);

CREATE TABLE IF NOT EXISTS token (
    tokenizer_id INTEGER NOT NULL,
    token_id     INTEGER NOT NULL,
    piece        VARCHAR NOT NULL,          -- as in the vocabulary (Ġ, ##, ▁ spellings)
    surface      VARCHAR,                   -- decoded text without the word-boundary mark; NULL if not valid UTF-8 alone
    word_initial BOOLEAN NOT NULL,
    special      BOOLEAN NOT NULL,
    frequency    BIGINT,
    freq_rank    INTEGER,                   -- 0 = most frequent, among non-special tokens
    bucket       VARCHAR                    -- frequent | medium | rare | special
);

-- token -> ranked senses. rank 1 is "the first definition of a token".
CREATE TABLE IF NOT EXISTS alignment (
    tokenizer_id INTEGER NOT NULL,
    token_id     INTEGER NOT NULL,
    sense_id     BIGINT NOT NULL,
    rule         VARCHAR NOT NULL,          -- user | exact | casefold | lemma | affix | numeral | ...
    rank         INTEGER NOT NULL
);

-- Written by the index stage: nearest neighbours of each token, per run and matrix.
CREATE TABLE IF NOT EXISTS neighbor (
    run_id      VARCHAR NOT NULL,
    matrix      VARCHAR NOT NULL,           -- generated | original
    token_id    INTEGER NOT NULL,
    rank        INTEGER NOT NULL,
    neighbor_id INTEGER NOT NULL,
    score       REAL NOT NULL
);

CREATE OR REPLACE VIEW token_definition AS
SELECT a.tokenizer_id, a.token_id, t.piece, t.surface, t.word_initial, t.bucket, t.freq_rank,
       a.rank, a.rule, s.sense_id, e.word, e.pos, s.gloss, s.tags, s.example
FROM alignment a
JOIN token t USING (tokenizer_id, token_id)
JOIN sense s USING (sense_id)
JOIN entry e USING (entry_id);

CREATE OR REPLACE VIEW coverage AS
SELECT t.tokenizer_id, t.bucket,
       count(*) AS tokens,
       count(*) FILTER (WHERE a.token_id IS NOT NULL) AS covered,
       covered / greatest(tokens, 1) AS ratio
FROM token t
LEFT JOIN (SELECT DISTINCT tokenizer_id, token_id FROM alignment) a USING (tokenizer_id, token_id)
WHERE NOT t.special
GROUP BY ALL;

-- A word's synonyms, from its entries or their senses.
CREATE OR REPLACE VIEW synonym AS
SELECT e.word, e.lang_code, e.pos, r.sense_id, r.word AS synonym, r.note
FROM relation r JOIN entry e USING (entry_id)
WHERE r.kind = 'synonyms';

-- Terms derived from a word (kaikki's `derived`).
CREATE OR REPLACE VIEW derived_term AS
SELECT e.word, e.lang_code, e.pos, r.word AS derived, r.note
FROM relation r JOIN entry e USING (entry_id)
WHERE r.kind = 'derived';
