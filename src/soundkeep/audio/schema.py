"""The audio stage's tables (holdings); each schema change is a new numbered migration."""

from __future__ import annotations

STAGE = "audio"


def file_key_sql(sha256: str) -> str:
    """SQL: the key (UBIGINT) of the file with this sha256 (hex digits) expression."""
    return f"('0x' || left({sha256}, 16))::UBIGINT"


MIGRATIONS: list[tuple[int, str]] = [
    (1, """
CREATE TABLE audio_files (
    sha256 VARCHAR NOT NULL,          -- content address of the file as received
    size BIGINT NOT NULL,
    store_path VARCHAR NOT NULL,      -- relative to the archive root, or absolute when in place
    storage_mode VARCHAR NOT NULL,    -- copy | link | in_place
    container VARCHAR,
    codec VARCHAR,
    bitrate INTEGER,                  -- bits per second
    sample_rate INTEGER,
    channels SMALLINT,
    duration_ms INTEGER,
    tag_title VARCHAR,
    tag_artist VARCHAR,               -- the tag's artists joined with '; '
    tag_album VARCHAR,
    tag_isrc VARCHAR,                 -- normalised: upper case, no hyphens or spaces
    tag_mb_recording_id VARCHAR,
    tag_track_number SMALLINT,
    tag_disc_number SMALLINT,
    fingerprint VARCHAR,              -- Chromaprint, AcoustID's compressed base64 form
    first_seen TIMESTAMPTZ,
    tag_artists VARCHAR[],            -- each artist of the tags
    fingerprint_raw UINTEGER[],       -- the same fingerprint as 32-bit values (~8 per second)
    fp_matched_at TIMESTAMPTZ         -- when it was compared with the other fingerprints
);
CREATE TABLE scan_paths (
    path VARCHAR NOT NULL,            -- absolute path as scanned
    size BIGINT NOT NULL,
    mtime_ns BIGINT NOT NULL,
    sha256 VARCHAR,                   -- NULL when the file was quarantined
    scanned_at TIMESTAMPTZ
);
CREATE TABLE audio_links (
    sha256 VARCHAR NOT NULL,
    track_id BIGINT,                  -- NULL: unmatched or ambiguous
    -- isrc | mbid | fingerprint | title_artist_duration | path | unlinked | ambiguous
    method VARCHAR NOT NULL,
    confidence DOUBLE,
    linked_at TIMESTAMPTZ
);
-- The tracks an ambiguous file could be (best confidence first); rows only for ambiguous files.
CREATE TABLE audio_link_candidates (
    sha256 VARCHAR NOT NULL,
    track_id BIGINT NOT NULL,
    method VARCHAR NOT NULL,
    confidence DOUBLE
);
-- Fingerprint index: each distinct 32-bit value of a file's fingerprint, at its first position.
CREATE TABLE audio_fp_terms (
    term UINTEGER NOT NULL,
    sha256 VARCHAR NOT NULL,
    pos SMALLINT NOT NULL
);
-- Pairs of different files holding the same recording (both directions are stored).
CREATE TABLE audio_fp_matches (
    sha256 VARCHAR NOT NULL,
    other_sha256 VARCHAR NOT NULL,
    item_offset INTEGER,              -- fingerprint items (~0.124 s) from other to this file
    similarity DOUBLE                 -- 1 - 2 * bit error rate over the aligned overlap
)
"""),
    # A file's key (file_key_sql: the first 64 bits of its sha256, as a number) stored beside
    # the sha256 in the files and their links: the plan joins them on it (with the sha256,
    # exact) and digests it instead of the text (10 M tracks with 4 M files: finding each
    # held track's file 0.97 -> 0.72 s, the holdings' digest 0.31 -> 0.03 s).
    (2, f"""
ALTER TABLE audio_files ADD COLUMN file_key UBIGINT;
UPDATE audio_files SET file_key = {file_key_sql("sha256")};
ALTER TABLE audio_links ADD COLUMN file_key UBIGINT;
UPDATE audio_links SET file_key = {file_key_sql("sha256")}
"""),
    # Required from then on (DuckDB refuses the constraint in the transaction that filled it).
    (3, """
ALTER TABLE audio_files ALTER COLUMN file_key SET NOT NULL;
ALTER TABLE audio_links ALTER COLUMN file_key SET NOT NULL
"""),
]
