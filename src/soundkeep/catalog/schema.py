"""The catalog's tables, declared once; each schema change is a new numbered migration."""

from __future__ import annotations

STAGE = "catalog"

# Every catalog row carries its provenance: the ingested file it came from (source_id, whose
# row in `sources` names the file, its sha256, the source's name and when it was ingested),
# the row in that file, and the source's own identifier for the row (e.g. an MBID). Rows made
# by name (an artist or album named in a track row) carry the id of the file that named them.
_PROV = """
    source_id INTEGER,
    source_row BIGINT,
    source_key VARCHAR
"""

MIGRATIONS: list[tuple[int, str]] = [
    (1, f"""
CREATE TABLE artists (
    artist_id BIGINT NOT NULL,
    name VARCHAR NOT NULL,
    followers BIGINT,
    popularity SMALLINT,
    {_PROV}
);
CREATE TABLE artist_genres (
    artist_id BIGINT NOT NULL,
    genre VARCHAR NOT NULL
);
CREATE TABLE releases (
    release_id BIGINT NOT NULL,
    title VARCHAR NOT NULL,
    release_type VARCHAR,
    upc VARCHAR,
    label VARCHAR,
    copyright_c VARCHAR,
    copyright_p VARCHAR,
    release_date DATE,
    release_date_precision VARCHAR,
    total_tracks INTEGER,
    popularity SMALLINT,
    {_PROV}
);
CREATE TABLE release_artists (
    release_id BIGINT NOT NULL,
    artist_id BIGINT NOT NULL,
    position SMALLINT NOT NULL
);
CREATE TABLE tracks (
    track_id BIGINT NOT NULL,
    title VARCHAR NOT NULL,
    release_id BIGINT,
    disc_number SMALLINT,
    track_number SMALLINT,
    duration_ms INTEGER,
    explicit BOOLEAN,
    isrc VARCHAR,
    popularity SMALLINT,
    listens BIGINT,
    rights_status VARCHAR NOT NULL,
    distributable BOOLEAN NOT NULL,
    {_PROV}
);
CREATE TABLE track_artists (
    track_id BIGINT NOT NULL,
    artist_id BIGINT NOT NULL,
    position SMALLINT NOT NULL,
    join_phrase VARCHAR
);
CREATE TABLE audio_features (
    track_id BIGINT NOT NULL,
    tempo FLOAT,
    key TINYINT,
    mode TINYINT,
    time_signature TINYINT,
    loudness FLOAT,
    energy FLOAT,
    danceability FLOAT,
    valence FLOAT
);
CREATE TABLE sources (
    source_id INTEGER NOT NULL,
    source_file VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL,
    size BIGINT,
    format VARCHAR,
    entity VARCHAR,
    source_name VARCHAR,
    rows_read BIGINT,
    rows_accepted BIGINT,
    rows_quarantined BIGINT,
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ
);
CREATE TABLE quarantine (
    stage VARCHAR NOT NULL,
    source_file VARCHAR,
    row_number BIGINT,
    field VARCHAR,
    value VARCHAR,
    reason VARCHAR NOT NULL,
    quarantined_at TIMESTAMPTZ
);
-- A release's track list by the source's own keys: which recording stands at which position.
-- (MusicBrainz separates recordings from the releases they appear on.)
CREATE TABLE release_tracks (
    release_id BIGINT NOT NULL,
    recording_key VARCHAR NOT NULL,
    disc_number SMALLINT,
    track_number SMALLINT,
    source_id INTEGER
);
-- Files a source says it holds for a track (e.g. a beets library's item paths), so the
-- audio scan can link those files at once.
CREATE TABLE known_paths (
    path VARCHAR NOT NULL,
    track_id BIGINT NOT NULL,
    source_id INTEGER
);
CREATE VIEW genres AS
    SELECT genre, count(*) AS artists FROM artist_genres GROUP BY genre
"""),
    # What the plan needs of each track's relations, made by `soundkeep refresh`
    # (catalog.derived): the highest popularity and the most followers among its credited
    # artists, and its release's popularity. NULL until then.
    (2, """
ALTER TABLE tracks ADD COLUMN artist_popularity SMALLINT;
ALTER TABLE tracks ADD COLUMN artist_followers BIGINT;
ALTER TABLE tracks ADD COLUMN release_popularity SMALLINT;
"""),
    # Whether another track has the same ISRC (catalog.derived): the plan groups only those.
    (3, """
ALTER TABLE tracks ADD COLUMN isrc_shared BOOLEAN;
"""),
]
