"""The plan stage's tables; each schema change is a new numbered migration."""

from __future__ import annotations

STAGE = "plan"

MIGRATIONS: list[tuple[int, str]] = [
    (1, """
CREATE TABLE plans (
    plan_id INTEGER NOT NULL,
    created_at TIMESTAMPTZ,
    settings_json VARCHAR,            -- the settings the plan was made with
    catalog_fingerprint VARCHAR,      -- what catalog it was made from
    budget_bytes BIGINT,
    summary_json VARCHAR
);
CREATE TABLE plan_tracks (
    plan_id INTEGER NOT NULL,
    track_id BIGINT NOT NULL,
    rank BIGINT,                      -- 1 = most important
    listens_est DOUBLE,
    priority DOUBLE,
    tier VARCHAR NOT NULL,            -- original | reencode | metadata_only (or a configured tier)
    status VARCHAR NOT NULL,          -- planned_original, planned_reencode, metadata_only, dark, ...
    est_bytes BIGINT,
    phase INTEGER,                    -- release phase; NULL when not distributed
    duplicate_of BIGINT               -- for skipped_duplicate_isrc: the track that keeps the audio
);
CREATE VIEW current_plan AS
    SELECT * FROM plan_tracks WHERE plan_id = (SELECT max(plan_id) FROM plans)
"""),
]
