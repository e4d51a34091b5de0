"""Stored plans: find one by id (default: the newest) with its settings and summary."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import duckdb

from soundkeep.plan.config import PlanError, PlanSettings, settings_from_dict


@dataclass
class PlanRecord:
    """One stored plan's header: id, when, with which settings, and its summary."""

    plan_id: int
    created_at: str | None
    settings: PlanSettings
    settings_dict: dict[str, Any]
    fingerprint: str
    summary: dict[str, Any]


# A plan names the file it chose for a held track by its key (audio.schema.file_key_sql: the
# first 64 bits of its sha256, as a number; as text the digests were a third of the cost of
# storing a plan with 4 M files held). Two files share a key with a chance of 2^-64 a pair;
# a key is only ever looked up among one track's own files.
#
# Which of a track's held files (f: audio_files, size > 0) the plan keeps: the highest
# bitrate, then the largest, then the smallest key (the planner's order, priority._HELD) or
# sha256 (the same order but for two files of one track sharing their first 64 bits).
FILE_PREFERENCE = "f.bitrate DESC NULLS LAST, f.size DESC"
BEST_FILE_ORDER = f"{FILE_PREFERENCE}, f.sha256"


def chosen_file_sql(plan: str) -> str:
    """SQL: (track_id, sha256) of the file each row of `plan` (a relation with track_id and
    file_key) names, among the track's linked files; for a row naming none (a plan made
    before the scan), its best linked file. A file no longer held, or no longer linked to
    the track (relinked to another, or found ambiguous), gives no row: the track has no file
    until the next plan."""
    return f"""
    SELECT l.track_id, f.sha256
    FROM {plan} p JOIN audio_links l ON l.track_id = p.track_id
    JOIN audio_files f ON f.sha256 = l.sha256
    WHERE f.size > 0 AND (p.file_key IS NULL OR f.file_key = p.file_key)
    QUALIFY row_number() OVER (PARTITION BY l.track_id ORDER BY {BEST_FILE_ORDER}) = 1"""


_SELECT = ("SELECT plan_id, created_at::VARCHAR, settings_json, catalog_fingerprint, "
           "summary_json FROM plans")


def write_names(con: duckdb.DuckDBPyConnection, plan_id: int, tiers: list[str],
                statuses: list[str]) -> None:
    """Name a plan's tier and status codes (the position in each list): the view plan_tracks
    shows plan_rows with these names, and shows a plan's rows only once they exist."""
    rows = [(plan_id, kind, code, name)
            for kind, names in (("tier", tiers), ("status", statuses))
            for code, name in enumerate(names)]
    con.executemany("INSERT INTO plan_names VALUES (?, ?, ?, ?)", rows)


def forget_unfinished(con: duckdb.DuckDBPyConnection, plan_id: int) -> None:
    """Remove rows and names of plans from this id on that have no `plans` row (a run that
    failed or was killed while writing its rows, or plans deleted by hand)."""
    for table in ("plan_rows", "plan_names"):
        con.execute(f"DELETE FROM {table} WHERE plan_id >= ?", [plan_id])


def forget_plans(con: duckdb.DuckDBPyConnection, up_to: int) -> None:
    """Remove the plans up to this id, with their rows and names."""
    for table in ("plan_rows", "plan_names", "plans"):
        con.execute(f"DELETE FROM {table} WHERE plan_id <= ?", [up_to])


def plan_ids(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Ids of the stored plans, oldest first."""
    return [int(r[0]) for r in con.execute("SELECT plan_id FROM plans ORDER BY plan_id").fetchall()]


def get_plan(con: duckdb.DuckDBPyConnection, plan_id: int | None = None) -> PlanRecord:
    """A stored plan (the newest when plan_id is None); a clear error when there is none."""
    if plan_id is None:
        rows = con.execute(_SELECT + " ORDER BY plan_id DESC LIMIT 1").fetchall()
        if not rows:
            raise PlanError("no plan yet", expected="run 'soundkeep plan' first")
    else:
        rows = con.execute(_SELECT + " WHERE plan_id = ?", [plan_id]).fetchall()
        if not rows:
            raise PlanError("no such plan", field="plan", value=plan_id,
                            expected="one of " + (", ".join(map(str, plan_ids(con)))
                                                  or "none: run 'soundkeep plan' first"))
    pid, created, settings_json, fingerprint, summary_json = rows[0]
    data = json.loads(settings_json)
    return PlanRecord(plan_id=int(pid), created_at=created, settings=settings_from_dict(data),
                      settings_dict=data, fingerprint=str(fingerprint),
                      summary=json.loads(summary_json))
