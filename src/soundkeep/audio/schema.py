"""The audio stage's tables (holdings); each schema change is a new numbered migration."""

from __future__ import annotations

STAGE = "audio"

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
    tag_artist VARCHAR,
    tag_album VARCHAR,
    tag_isrc VARCHAR,
    tag_mb_recording_id VARCHAR,
    tag_track_number SMALLINT,
    tag_disc_number SMALLINT,
    fingerprint VARCHAR,
    first_seen TIMESTAMPTZ
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
    method VARCHAR NOT NULL,          -- isrc | mbid | fingerprint | title_artist_duration | unlinked | ambiguous
    confidence DOUBLE,
    linked_at TIMESTAMPTZ
)
"""),
]
