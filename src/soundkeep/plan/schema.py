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
    # Tier and status as one-byte codes, named per plan in plan_names: written as text they
    # were a fifth of the cost of storing a plan. plan_tracks becomes a view with the names,
    # so readers are unchanged; it shows a plan's rows once its names exist, which the
    # planner writes with the plan's `plans` row, last.
    (3, """
CREATE TABLE plan_names (
    plan_id INTEGER NOT NULL,
    kind VARCHAR NOT NULL,            -- tier | status
    code UTINYINT NOT NULL,
    name VARCHAR NOT NULL
);
INSERT INTO plan_names
    SELECT plan_id, 'tier', row_number() OVER (PARTITION BY plan_id ORDER BY tier) - 1, tier
    FROM (SELECT DISTINCT plan_id, tier FROM plan_tracks)
    UNION ALL
    SELECT plan_id, 'status', row_number() OVER (PARTITION BY plan_id ORDER BY status) - 1,
           status
    FROM (SELECT DISTINCT plan_id, status FROM plan_tracks);
CREATE TABLE plan_rows (
    plan_id INTEGER NOT NULL,
    track_id BIGINT NOT NULL,
    rank BIGINT,
    listens_est DOUBLE,
    priority DOUBLE,
    tier_code UTINYINT NOT NULL,      -- plan_names (plan_id, 'tier', code)
    status_code UTINYINT NOT NULL,    -- plan_names (plan_id, 'status', code)
    est_bytes BIGINT,
    phase INTEGER,
    duplicate_of BIGINT,
    duration_ms INTEGER,
    held_bytes BIGINT,
    sha256 VARCHAR
);
INSERT INTO plan_rows
    SELECT p.plan_id, p.track_id, p.rank, p.listens_est, p.priority, t.code, s.code,
           p.est_bytes, p.phase, p.duplicate_of, p.duration_ms, p.held_bytes, p.sha256
    FROM plan_tracks p
    JOIN plan_names t ON t.plan_id = p.plan_id AND t.kind = 'tier' AND t.name = p.tier
    JOIN plan_names s ON s.plan_id = p.plan_id AND s.kind = 'status' AND s.name = p.status;
DROP VIEW current_plan;
DROP TABLE plan_tracks;
CREATE VIEW plan_tracks AS
    SELECT r.plan_id, r.track_id, r.rank, r.listens_est, r.priority, t.name AS tier,
           s.name AS status, r.est_bytes, r.phase, r.duplicate_of, r.duration_ms, r.held_bytes,
           r.sha256
    FROM plan_rows r
    JOIN plan_names t ON t.plan_id = r.plan_id AND t.kind = 'tier' AND t.code = r.tier_code
    JOIN plan_names s ON s.plan_id = r.plan_id AND s.kind = 'status' AND s.code = r.status_code;
CREATE VIEW current_plan AS
    SELECT pt.* FROM plan_tracks pt
    SEMI JOIN (SELECT max(plan_id) AS plan_id FROM plans) latest ON pt.plan_id = latest.plan_id
"""),
    # The held file a row means as a 64-bit key (audio.schema.file_key_sql) instead of its
    # sha256: as text the digests were a third of the cost of storing a plan with 4 M files
    # held. plan_rows is written anew (an UPDATE of every row of a large plan would hold the
    # old values in memory until its commit).
    (4, """
DROP VIEW IF EXISTS current_plan;
DROP VIEW IF EXISTS plan_tracks;
CREATE TABLE plan_rows_new (
    plan_id INTEGER NOT NULL,
    track_id BIGINT NOT NULL,
    rank BIGINT,
    listens_est DOUBLE,
    priority DOUBLE,
    tier_code UTINYINT NOT NULL,      -- plan_names (plan_id, 'tier', code)
    status_code UTINYINT NOT NULL,    -- plan_names (plan_id, 'status', code)
    est_bytes BIGINT,
    phase INTEGER,
    duplicate_of BIGINT,
    duration_ms INTEGER,
    held_bytes BIGINT,
    file_key UBIGINT                  -- the held file chosen (its sha256's first 64 bits)
);
INSERT INTO plan_rows_new
    SELECT plan_id, track_id, rank, listens_est, priority, tier_code, status_code, est_bytes,
           phase, duplicate_of, duration_ms, held_bytes,
           ('0x' || left(sha256, 16))::UBIGINT
    FROM plan_rows;
DROP TABLE plan_rows;
ALTER TABLE plan_rows_new RENAME TO plan_rows;
CREATE VIEW plan_tracks AS
    SELECT r.plan_id, r.track_id, r.rank, r.listens_est, r.priority, t.name AS tier,
           s.name AS status, r.est_bytes, r.phase, r.duplicate_of, r.duration_ms, r.held_bytes,
           r.file_key
    FROM plan_rows r
    JOIN plan_names t ON t.plan_id = r.plan_id AND t.kind = 'tier' AND t.code = r.tier_code
    JOIN plan_names s ON s.plan_id = r.plan_id AND s.kind = 'status' AND s.code = r.status_code;
CREATE VIEW current_plan AS
    SELECT pt.* FROM plan_tracks pt
    SEMI JOIN (SELECT max(plan_id) AS plan_id FROM plans) latest ON pt.plan_id = latest.plan_id
"""),
    # Each held track's chosen file, kept between plans (priority.update_held): remade only
    # when the holdings changed, instead of joining every link with its file in every plan.
    (5, """
CREATE TABLE plan_held (
    track_id BIGINT NOT NULL,
    file_key UBIGINT NOT NULL,        -- the chosen file (its sha256's first 64 bits)
    size BIGINT,
    duration_ms INTEGER
);
DELETE FROM meta WHERE key = 'plan.held_digest';
"""),
]
