"""The encode step's tables (journal and outputs); each schema change is a new migration.

encode_journal has one row per finished job (success or failure), committed in small
batches after the outputs were renamed into the store: a row means "this track, from this
original, with these parameters, is done". A killed run loses only
the jobs whose rows were not committed yet; running again redoes exactly those (the Opus
encoder is bit-exact, so the same bytes land on the same content address).
"""

from __future__ import annotations

STAGE = "encode"

MIGRATIONS: list[tuple[int, str]] = [
    (1, """
CREATE TABLE encode_runs (
    run_id INTEGER NOT NULL,
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,          -- NULL: still running, or killed
    plan_id INTEGER,                  -- the plan carried out
    executor VARCHAR,                 -- local:N or ray:ADDRESS
    summary_json VARCHAR              -- the --json summary of the run
);
CREATE TABLE encode_journal (
    track_id BIGINT NOT NULL,
    tier VARCHAR NOT NULL,
    params VARCHAR NOT NULL,          -- 'original', or 'opus 75000 vbr': a change is a new job
    source_sha256 VARCHAR NOT NULL,   -- the original (audio_files.sha256)
    status VARCHAR NOT NULL,          -- encoded | kept_original | failed
    reason VARCHAR,                   -- failed: 'code: detail' (decode_error, verify_duration, ...)
    output_sha256 VARCHAR,            -- the file as stored, with embedded metadata
    output_path VARCHAR,              -- store/ab/cd/<output_sha256>, relative to the archive root
    output_size BIGINT,
    patch_sha256 VARCHAR,             -- original tier: restore patch, output -> original bytes
    patch_path VARCHAR,
    patch_size BIGINT,
    source_size BIGINT,
    source_duration_ms INTEGER,       -- the original, as decoded
    codec VARCHAR,                    -- of the output
    bitrate INTEGER,                  -- requested bits per second (re-encodes)
    sample_rate INTEGER,
    channels SMALLINT,
    duration_ms INTEGER,              -- the output, as decoded when verified
    loudness_lufs DOUBLE,             -- EBU R128 integrated loudness of the original
    replaygain_db DOUBLE,             -- ReplayGain 2.0 track gain (to -18 LUFS)
    sample_peak DOUBLE,
    tags_sha256 VARCHAR,              -- digest of the embedded metadata (to spot catalog changes)
    seconds DOUBLE,                   -- wall time of the task
    worker VARCHAR,                   -- host:pid that ran it
    run_id INTEGER,
    finished_at TIMESTAMPTZ
);
CREATE VIEW encode_outputs AS
    SELECT * FROM encode_journal
    WHERE status IN ('encoded', 'kept_original')
    QUALIFY row_number() OVER (PARTITION BY track_id ORDER BY finished_at DESC, run_id DESC) = 1
"""),
]
