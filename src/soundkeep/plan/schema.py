"""The plan stage's tables; each schema change is a new numbered migration."""

from __future__ import annotations

STAGE = "plan"

MIGRATIONS: list[tuple[int, str]] = [
    (1, """
CREATE TABLE plans (
    plan_id INTEGER NOT NULL,
    created_at TIMESTAMPTZ,
    settings_json VARCHAR,            -- the settings the plan was made with
    catalog_fingerprint VARCHAR,      -- what catalog (and holdings) it was made from
    budget_bytes BIGINT,              -- NULL: unlimited
    summary_json VARCHAR
);
CREATE TABLE plan_tracks (
    plan_id INTEGER NOT NULL,
    track_id BIGINT NOT NULL,
    rank BIGINT,                      -- 1 = most important
    listens_est DOUBLE,               -- real listens when the catalog has them, else estimated
    priority DOUBLE,                  -- the secondary priority (orders popularity 0, breaks ties)
    tier VARCHAR NOT NULL,            -- original | reencode | metadata_only (or a configured tier)
    status VARCHAR NOT NULL,          -- planned_original, planned_reencode, dark, missing_audio..
    est_bytes BIGINT,                 -- bytes of the kept audio at this tier (0 without audio)
    phase INTEGER,                    -- release phase; NULL when not distributed
    duplicate_of BIGINT,              -- for skipped_duplicate_isrc: the track that keeps the audio
    duration_ms INTEGER,              -- the held file's duration when one is held
    held_bytes BIGINT,                -- size of the held file (NULL when none)
    sha256 VARCHAR                    -- the held file chosen for this track (NULL when none)
);
-- A semi-join, not "WHERE plan_id = (SELECT max(plan_id) ...)": DuckDB 2.0.0 gives wrong
-- aggregates when that scalar-subquery form is joined and grouped.
CREATE VIEW current_plan AS
    SELECT pt.* FROM plan_tracks pt
    SEMI JOIN (SELECT max(plan_id) AS plan_id FROM plans) latest ON pt.plan_id = latest.plan_id
"""),
    # Archives made before migration 1 took its semi-join form still hold the scalar-subquery
    # view; this puts the semi-join in every archive.
    (2, """
CREATE OR REPLACE VIEW current_plan AS
    SELECT pt.* FROM plan_tracks pt
    SEMI JOIN (SELECT max(plan_id) AS plan_id FROM plans) latest ON pt.plan_id = latest.plan_id
"""),
]
