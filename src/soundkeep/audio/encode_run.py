"""Carry out the plan: pick the jobs, hand them to an executor, journal every result.

The jobs are the held tracks of the current plan whose tier keeps audio and that the journal
does not record as done with the same original and parameters. They are listed once into a
temporary table (ordered by plan rank, so a stopped run has done the most important tracks
first), read back page by page, and turned into EncodeJob values with their tags. Results
are journaled in small transactions as they arrive; a killed run loses only the results not
yet committed, and the next run does exactly those jobs again.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from soundkeep import db
from soundkeep.archive import Archive
from soundkeep.audio.encode import (
    STATUS_ENCODED,
    STATUS_FAILED,
    STATUS_KEPT,
    EncodeJob,
    EncodeResult,
    clean_tmp,
    encode_one,
    params_for,
    tmp_dir,
)
from soundkeep.audio.tags import TrackTags
from soundkeep.errors import ArchiveError, ConfigError, SoundkeepError
from soundkeep.plan import store
from soundkeep.run import Executor, make_executor
from soundkeep.run.base import available_cores

SUPPORTED_CODECS = ("original", "opus", "none")


class WorkerError(SoundkeepError):
    """The executor keeps losing its workers: a problem of the machines, not of the files."""

PAGE_ROWS = 2000
FLUSH_SECONDS = 1.0
FLUSH_RESULTS = 500
CALIBRATION_FILES = 2  # per codec, for --dry-run
MIN_OPUS_KBPS, MAX_OPUS_KBPS = 6, 510  # what libopus accepts


@dataclass(frozen=True)
class TierSpec:
    """What encode does with a tier: its codec and, for re-encodes, bitrate and VBR."""

    name: str
    codec: str
    bitrate: int | None = None  # bit/s
    vbr: bool = True

    @property
    def params(self) -> str:
        """The journal's parameter string for this tier."""
        return params_for(self.codec, self.bitrate, self.vbr)


@dataclass
class Summary:
    """The figures of one run (or of a dry run); the CLI prints them, --json as is."""

    planned: int = 0  # tracks the plan keeps audio for
    not_held: int = 0  # ... of which no file is held (nothing to encode yet)
    skipped: int = 0  # ... already done by an earlier run (journal)
    todo: int = 0  # ... to do in this run (after --limit)
    encoded: int = 0
    kept_original: int = 0
    failed: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    audio_seconds: float = 0.0
    seconds: float = 0.0
    executor: str = ""
    workers: int = 0
    run_id: int | None = None
    failures: dict[str, int] = field(default_factory=dict)

    @property
    def done(self) -> int:
        """Jobs finished in this run."""
        return self.encoded + self.kept_original + self.failed

    def as_dict(self) -> dict[str, Any]:
        """Plain data with the derived rates."""
        out = asdict(self)
        out["bytes_saved"] = self.bytes_in - self.bytes_out
        out["realtime_factor"] = round(self.audio_seconds / self.seconds, 2) if self.seconds \
            else 0.0
        out["files_per_second"] = round(self.done / self.seconds, 3) if self.seconds else 0.0
        out["audio_seconds"] = round(self.audio_seconds, 3)
        out["seconds"] = round(self.seconds, 3)
        return out


# -- settings -------------------------------------------------------------------------------

def tier_specs(arch: Archive, names: list[str]) -> dict[str, TierSpec]:
    """Read [tiers.NAME] for the tiers the plan uses; refuse what encode cannot write."""
    out: dict[str, TierSpec] = {}
    tiers = arch.settings.section("tiers")
    for name in names:
        where = f"tiers.{name}"
        table = tiers.get(name)
        if not isinstance(table, dict):
            raise ConfigError("the plan uses a tier the settings do not define",
                              file=str(arch.settings.path), field=where, value=name,
                              expected="a [tiers.NAME] table: one of " + ", ".join(sorted(tiers)))
        codec = table.get("codec")
        if codec not in SUPPORTED_CODECS:
            raise ConfigError("encode cannot write this codec", file=str(arch.settings.path),
                              field=f"{where}.codec", value=codec,
                              expected="one of " + ", ".join(SUPPORTED_CODECS))
        if codec != "opus":
            out[name] = TierSpec(name, str(codec))
            continue
        kbps = table.get("bitrate_kbps")
        if not isinstance(kbps, int | float) or isinstance(kbps, bool) or not (
                MIN_OPUS_KBPS <= kbps <= MAX_OPUS_KBPS):
            raise ConfigError("bad Opus bitrate", file=str(arch.settings.path),
                              field=f"{where}.bitrate_kbps", value=kbps,
                              expected=f"kbit/s between {MIN_OPUS_KBPS} and {MAX_OPUS_KBPS}")
        vbr = table.get("vbr", True)
        if not isinstance(vbr, bool):
            raise ConfigError("expected true or false", file=str(arch.settings.path),
                              field=f"{where}.vbr", value=vbr)
        container = table.get("container", "ogg")
        if container != "ogg":
            raise ConfigError("Opus is written in Ogg only", file=str(arch.settings.path),
                              field=f"{where}.container", value=container, expected='"ogg"')
        out[name] = TierSpec(name, "opus", round(kbps * 1000), vbr)
    return out


# -- job selection --------------------------------------------------------------------------

def _check_tables(arch: Archive) -> int:
    plan_id = db.scalar(arch.con, "SELECT max(plan_id) FROM plans")
    if plan_id is None:
        raise ArchiveError("there is no plan to carry out", file=str(arch.root),
                           expected="run 'soundkeep plan' first")
    return int(plan_id)


def select_jobs(arch: Archive, plan_id: int, specs: dict[str, TierSpec], limit: int | None,
                retry_failed: bool) -> Summary:
    """List this run's jobs into the temp table encode_todo; count what is planned and done.

    The plan's rows are read from plan_tracks by plan_id rather than through the current_plan
    view: the run works from, and records, the plan it was started with.
    """
    con = arch.con
    con.execute("DROP TABLE IF EXISTS encode_tiers")
    con.execute("CREATE TEMP TABLE encode_tiers (tier VARCHAR, codec VARCHAR, params VARCHAR)")
    rows = [(s.name, s.codec, s.params) for s in specs.values() if s.codec != "none"]
    if rows:
        con.executemany("INSERT INTO encode_tiers VALUES (?, ?, ?)", rows)
    # A failure is final (not tried again) unless --retry-failed, or unless the worker died:
    # that says nothing about the file, so the next run tries again.
    final = "j.status IN ('encoded', 'kept_original')" if retry_failed else \
        "(j.status <> 'failed' OR j.reason NOT LIKE 'worker_crashed%')"
    con.execute(f"""
CREATE OR REPLACE TEMP TABLE encode_planned AS
WITH plan AS (
    SELECT p.track_id, p.tier, p.rank, p.file_key, p.duration_ms, p.est_bytes,
           t.codec, t.params
    FROM plan_tracks p JOIN encode_tiers t USING (tier)
    WHERE p.plan_id = $plan_id
),
chosen AS ({store.chosen_file_sql("plan")}
),
files AS (
    SELECT sha256, any_value(store_path) AS store_path, any_value(size) AS size,
           any_value(duration_ms) AS duration_ms
    FROM audio_files GROUP BY sha256
),
latest AS (
    SELECT track_id, source_sha256, params, status, reason FROM encode_journal
    QUALIFY row_number() OVER (PARTITION BY track_id, source_sha256, params
                               ORDER BY finished_at DESC, run_id DESC) = 1
)
SELECT p.track_id, p.tier, p.rank, p.codec, p.params,
       l.sha256, f.store_path, f.size,
       coalesce(f.duration_ms, p.duration_ms) AS duration_ms, p.est_bytes,
       (f.store_path IS NULL) AS not_held,
       coalesce({final}, false) AS done
FROM plan p
LEFT JOIN chosen l USING (track_id)
LEFT JOIN files f ON f.sha256 = l.sha256
LEFT JOIN latest j ON j.track_id = p.track_id AND j.source_sha256 = l.sha256
                  AND j.params = p.params
""", {"plan_id": plan_id})
    planned, not_held, skipped = db.one(con, """
        SELECT count(*), count(*) FILTER (WHERE not_held),
               count(*) FILTER (WHERE done AND NOT not_held)
        FROM encode_planned""") or (0, 0, 0)
    lim = "" if limit is None else f"LIMIT {int(limit)}"
    # The jobs with everything they need (tags too), in one set-based pass over the catalog;
    # stored in rank order (insertion order kept for this one statement) so that reading a
    # page of n values touches only the row groups that hold it.
    with db.setting(con, "preserve_insertion_order", "true"):
        con.execute(_TODO_SQL.format(limit=lim))
    todo = db.scalar(con, "SELECT count(*) FROM encode_todo") or 0
    return Summary(planned=int(planned), not_held=int(not_held), skipped=int(skipped),
                   todo=int(todo))


_TODO_SQL = """
CREATE OR REPLACE TEMP TABLE encode_todo AS
WITH todo AS (
    SELECT * FROM encode_planned WHERE NOT not_held AND NOT done
    ORDER BY rank NULLS LAST, track_id {limit}
),
t AS (
    SELECT * FROM tracks WHERE track_id IN (SELECT track_id FROM todo)
    QUALIFY row_number() OVER (PARTITION BY track_id) = 1
),
r AS (
    SELECT * FROM releases WHERE release_id IN (SELECT release_id FROM t)
    QUALIFY row_number() OVER (PARTITION BY release_id) = 1
),
ta AS (
    SELECT ta.track_id, list(a.name ORDER BY ta.position) AS artists
    FROM track_artists ta JOIN artists a USING (artist_id)
    WHERE ta.track_id IN (SELECT track_id FROM todo)
    GROUP BY ta.track_id
),
ra AS (
    SELECT ra.release_id, list(a.name ORDER BY ra.position) AS album_artists
    FROM release_artists ra JOIN artists a USING (artist_id)
    WHERE ra.release_id IN (SELECT release_id FROM r)
    GROUP BY ra.release_id
)
SELECT row_number() OVER (ORDER BY d.rank NULLS LAST, d.track_id) AS n,
       d.track_id, d.tier, d.rank, d.codec, d.params, d.sha256, d.store_path, d.size,
       d.duration_ms, d.est_bytes,
       t.title, t.isrc, t.disc_number, t.track_number, t.rights_status,
       r.title AS album, r.upc, r.label, r.copyright_p, r.total_tracks,
       CASE r.release_date_precision
            WHEN 'year' THEN strftime(r.release_date, '%Y')
            WHEN 'month' THEN strftime(r.release_date, '%Y-%m')
            ELSE strftime(r.release_date, '%Y-%m-%d') END AS date,
       ta.artists, ra.album_artists
FROM todo d
JOIN t USING (track_id)
LEFT JOIN r ON r.release_id = t.release_id
LEFT JOIN ta ON ta.track_id = d.track_id
LEFT JOIN ra ON ra.release_id = t.release_id
ORDER BY n
"""


def _jobs(arch: Archive, specs: dict[str, TierSpec], root: Path | None = None,
          only: list[int] | None = None) -> Iterator[EncodeJob]:
    """The jobs of encode_todo, a page at a time (a loop over files, not over the catalog).

    root: where outputs go (default: the archive); only: just these rows (by n).
    """
    base = arch.root.resolve()
    out_root = str((root or base).resolve())
    pages: list[tuple[str, list[Any]]]
    if only is not None:
        pages = [("SELECT * FROM encode_todo WHERE list_contains(?, n) ORDER BY n", [only])]
    else:
        total = int(db.scalar(arch.con, "SELECT count(*) FROM encode_todo") or 0)
        sql = "SELECT * FROM encode_todo WHERE n > ? AND n <= ? ORDER BY n"
        pages = [(sql, [start, start + PAGE_ROWS]) for start in range(0, total, PAGE_ROWS)]
    for sql, params in pages:
        page = arch.con.sql(sql, params=params).to_arrow_table()
        for row in page.to_pylist() if page is not None else []:
            spec = specs[row["tier"]]
            path = Path(row["store_path"])
            yield EncodeJob(
                track_id=int(row["track_id"]), tier=row["tier"], codec=spec.codec,
                source_sha256=row["sha256"],
                source_path=str(path if path.is_absolute() else base / path),
                archive_root=out_root, tags=_tags(row), bitrate=spec.bitrate, vbr=spec.vbr)


def _tags(row: dict[str, Any]) -> TrackTags:
    return TrackTags(
        track_id=int(row["track_id"]), title=row["title"],
        artists=tuple(row["artists"] or ()), album=row["album"],
        album_artists=tuple(row["album_artists"] or ()),
        track_number=row["track_number"], track_total=row["total_tracks"],
        disc_number=row["disc_number"], date=row["date"], isrc=row["isrc"], upc=row["upc"],
        label=row["label"], copyright=row["copyright_p"], rights=row["rights_status"])


def _plan_tiers(arch: Archive, plan_id: int) -> list[str]:
    return [r[0] for r in arch.con.execute(
        "SELECT DISTINCT tier FROM plan_tracks WHERE plan_id = ? ORDER BY tier",
        [plan_id]).fetchall()]


# -- journal --------------------------------------------------------------------------------

_JOURNAL_COLUMNS = [
    "track_id", "tier", "params", "source_sha256", "status", "reason", "output_sha256",
    "output_path", "output_size", "patch_sha256", "patch_path", "patch_size", "source_size",
    "source_duration_ms", "codec", "bitrate", "sample_rate", "channels", "duration_ms",
    "loudness_lufs", "replaygain_db", "sample_peak", "tags_sha256", "seconds", "worker",
    "run_id", "finished_at",
]


def _journal(arch: Archive, results: list[EncodeResult], run_id: int) -> None:
    """Commit a batch of results in one transaction."""
    if not results:
        return
    finished = db.now()
    rows = []
    for r in results:
        d = asdict(r)
        d["run_id"], d["finished_at"] = run_id, finished
        rows.append({k: d.get(k) for k in _JOURNAL_COLUMNS})
    con = arch.con
    con.register("encode_batch", pa.Table.from_pylist(rows))
    cols = ", ".join(_JOURNAL_COLUMNS)
    try:
        with db.transaction(con):
            con.execute(f"INSERT INTO encode_journal ({cols}) SELECT {cols} FROM encode_batch")
    finally:
        con.unregister("encode_batch")


def _lost(job: EncodeJob, reason: str) -> EncodeResult:
    return EncodeResult(track_id=job.track_id, tier=job.tier, params=job.params,
                        source_sha256=job.source_sha256, status=STATUS_FAILED, reason=reason,
                        tags_sha256=job.tags.digest())


def _tally(summary: Summary, r: EncodeResult) -> None:
    if r.status == STATUS_ENCODED:
        summary.encoded += 1
    elif r.status == STATUS_KEPT:
        summary.kept_original += 1
    else:
        summary.failed += 1
        code = (r.reason or "unknown").split(":", 1)[0]
        summary.failures[code] = summary.failures.get(code, 0) + 1
    if r.ok:
        summary.bytes_in += r.source_size or 0
        summary.bytes_out += r.output_size or 0
    summary.audio_seconds += r.audio_seconds


# -- the run --------------------------------------------------------------------------------

ProgressFn = Callable[[Summary], None]


def run_encode(arch: Archive, workers: int | None = None, ray: str | None = None,
               limit: int | None = None, retry_failed: bool = False,
               on_start: ProgressFn | None = None, on_result: ProgressFn | None = None,
               executor: Executor | None = None) -> Summary:
    """Encode (or keep) every held, planned track not done yet; journal each result."""
    plan_id = _check_tables(arch)
    specs = tier_specs(arch, _plan_tiers(arch, plan_id))
    summary = select_jobs(arch, plan_id, specs, limit, retry_failed)
    clean_tmp(arch.root)
    if summary.todo == 0:  # nothing to do: no run is recorded, nothing changes
        summary.executor = "none"
        if on_start:
            on_start(summary)
        return summary
    own = executor is None
    ex = executor or make_executor(workers, ray)
    try:
        _drive(arch, ex, plan_id, specs, summary, on_start, on_result)
    finally:
        if own:
            ex.close()
    _remove_empty_tmp(arch.root)
    return summary


def _drive(arch: Archive, ex: Executor, plan_id: int, specs: dict[str, TierSpec],
           summary: Summary, on_start: ProgressFn | None, on_result: ProgressFn | None) -> None:
    """Run the jobs of encode_todo on an executor, journaling results as they come."""
    summary.executor, summary.workers = ex.name, ex.workers
    con = arch.con
    run_id = int(db.scalar(con, "SELECT coalesce(max(run_id), 0) + 1 FROM encode_runs"))
    summary.run_id = run_id
    con.execute("INSERT INTO encode_runs VALUES (?, ?, NULL, ?, ?, NULL)",
                [run_id, db.now(), plan_id, ex.name])
    if on_start:
        on_start(summary)
    started = time.perf_counter()
    pending: list[EncodeResult] = []
    last_flush = time.monotonic()
    streak = 0  # workers that died one after the other
    try:
        for result in ex.map_unordered(encode_one, _jobs(arch, specs), _lost):
            pending.append(result)
            _tally(summary, result)
            streak = streak + 1 if (result.reason or "").startswith("worker_crashed") else 0
            if streak >= max(6, 3 * ex.workers):
                raise WorkerError(f"{streak} tasks in a row lost their worker; stopping "
                                  f"(last: {result.reason})", field=ex.name,
                                  expected="workers that stay up: check memory, the Python "
                                           "environment and the Ray cluster")
            summary.seconds = time.perf_counter() - started
            if len(pending) >= FLUSH_RESULTS or time.monotonic() - last_flush >= FLUSH_SECONDS:
                _journal(arch, pending, run_id)
                pending, last_flush = [], time.monotonic()
            if on_result:
                on_result(summary)
    finally:
        # Whatever finished is kept, also when the run is interrupted.
        _journal(arch, pending, run_id)
    summary.seconds = time.perf_counter() - started
    con.execute("UPDATE encode_runs SET finished_at = ?, summary_json = ? WHERE run_id = ?",
                [db.now(), json.dumps(summary.as_dict(), sort_keys=True), run_id])


def _remove_empty_tmp(root: Path) -> None:
    d = tmp_dir(root)
    for p in (d, d.parent):
        with contextlib.suppress(OSError):  # not empty (another stage's files), or gone
            p.rmdir()


# -- dry run --------------------------------------------------------------------------------

def dry_run(arch: Archive, workers: int | None = None, limit: int | None = None,
            retry_failed: bool = False, calibrate: bool = True) -> dict[str, Any]:
    """What a run would do, the bytes it expects, and the time a short calibration predicts."""
    plan_id = _check_tables(arch)
    specs = tier_specs(arch, _plan_tiers(arch, plan_id))
    summary = select_jobs(arch, plan_id, specs, limit, retry_failed)
    by_codec = arch.con.execute("""
        SELECT codec, count(*), sum(size), sum(duration_ms) / 1000.0, sum(est_bytes)
        FROM encode_todo GROUP BY codec ORDER BY codec""").fetchall()
    n_workers = workers or available_cores()
    out: dict[str, Any] = {
        "dry_run": True, "planned": summary.planned, "not_held": summary.not_held,
        "skipped": summary.skipped, "todo": summary.todo, "to_encode": 0,
        "to_keep_original": 0, "bytes_in": 0, "expected_bytes_out": 0, "audio_seconds": 0.0,
        "workers": n_workers, "calibration": {}, "estimated_core_seconds": None,
        "estimated_seconds": None,
    }
    audio_by_codec: dict[str, float] = {}
    for codec, n, size, audio, est in by_codec:
        out["to_encode" if codec == "opus" else "to_keep_original"] += int(n)
        out["bytes_in"] += int(size or 0)
        out["expected_bytes_out"] += int(est or 0)
        out["audio_seconds"] += float(audio or 0)
        audio_by_codec[codec] = float(audio or 0)
    out["audio_seconds"] = round(out["audio_seconds"], 3)
    if calibrate and summary.todo:
        cal = _calibrate(arch, specs)
        out["calibration"] = cal
        core_seconds = 0.0
        for codec, audio in audio_by_codec.items():
            speed = cal.get(codec, {}).get("realtime_factor")
            if speed:
                core_seconds += audio / speed
        out["estimated_core_seconds"] = round(core_seconds, 1)
        out["estimated_seconds"] = round(core_seconds / n_workers, 1)
    return out


def _calibrate(arch: Archive, specs: dict[str, TierSpec]) -> dict[str, dict[str, Any]]:
    """Run a few jobs of each codec in one worker, into a scratch directory, to time them."""
    sample = [int(r[0]) for r in arch.con.execute(f"""
        SELECT n FROM encode_todo
        QUALIFY row_number() OVER (PARTITION BY codec ORDER BY hash(track_id))
                <= {CALIBRATION_FILES}
        ORDER BY n""").fetchall()]
    scratch = Path(tempfile.mkdtemp(prefix="soundkeep-calibrate-"))
    stats: dict[str, Counter[str]] = {}
    ex = make_executor(1)
    try:
        jobs = {j.track_id: j for j in _jobs(arch, specs, scratch, only=sample)}
        for result in ex.map_unordered(encode_one, list(jobs.values()), _lost):
            c = stats.setdefault(jobs[result.track_id].codec, Counter())
            c["files"] += 1
            if result.ok:
                c["ok"] += 1
                c["audio_ms"] += result.source_duration_ms or 0
                c["ms"] += round(result.seconds * 1000)
                c["bytes_in"] += result.source_size or 0
                c["bytes_out"] += result.output_size or 0
    finally:
        ex.close()
        shutil.rmtree(scratch, ignore_errors=True)
    out: dict[str, dict[str, Any]] = {}
    for codec, c in stats.items():
        out[codec] = {
            "files": c["files"], "ok": c["ok"], "audio_seconds": c["audio_ms"] / 1000,
            "seconds": c["ms"] / 1000,
            "realtime_factor": round(c["audio_ms"] / c["ms"], 2) if c["ms"] else None,
            "size_ratio": round(c["bytes_out"] / c["bytes_in"], 4) if c["bytes_in"] else None,
        }
    return out
