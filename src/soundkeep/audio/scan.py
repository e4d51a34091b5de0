"""soundkeep scan: walk directories, read new or changed audio files in a process pool, write
them to the catalog in batches (one transaction each), then link them to catalog tracks.

Crash safety: a file enters the store under a temporary name and is renamed to its content
address; catalog rows are written per batch in one transaction, so a killed scan leaves
whole batches behind and the next run reads only files without an up-to-date scan_paths row.
Incremental: a path whose (size, mtime_ns) equals its scan_paths row is not opened again.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from soundkeep import db
from soundkeep.archive import Archive
from soundkeep.audio import fingerprint as fpmod
from soundkeep.audio import link, store
from soundkeep.audio.probe import (
    AUDIO_EXTENSIONS,
    FileResult,
    ScanTask,
    is_audio_name,
    preload_libraries,
    probe_many,
)
from soundkeep.audio.schema import file_key_sql
from soundkeep.catalog import identifiers
from soundkeep.config import Settings
from soundkeep.errors import ConfigError, InputError

# A worker task holds up to this many files or bytes (small files share one round trip).
TASK_FILES = 64
TASK_BYTES = 8 << 20
# Tasks sent ahead per worker: enough queued work that workers never wait while the main
# process writes a batch to the catalog.
IN_FLIGHT = 4
# A batch is written at least this often (seconds), so a killed scan of big files loses little.
BATCH_SECONDS = 5.0


@dataclass
class ScanOptions:
    """How a scan runs (defaults come from the [scan] settings)."""

    mode: str = "copy"
    fingerprint: bool = True
    workers: int = 0
    batch_files: int = 5000
    fsync: bool = True
    extensions: tuple[str, ...] = AUDIO_EXTENSIONS
    link: link.LinkSettings = field(default_factory=link.LinkSettings)


@dataclass
class ScanReport:
    """What one scan did (the CLI prints it; --json prints it as is)."""

    roots: list[str] = field(default_factory=list)
    found: int = 0                # audio-named files under the roots
    unchanged: int = 0            # only stat'ed
    read: int = 0                 # opened and read this run
    bytes_read: int = 0
    new_contents: int = 0         # new entries in audio_files
    duplicates: int = 0           # read files whose content the archive already held
    quarantined: int = 0
    changed_while_reading: int = 0
    gone: int = 0                 # paths scanned before that no longer exist
    links: dict[str, int] = field(default_factory=dict)
    fingerprint_pairs: int = 0
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # walk, read, write, link (s)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return asdict(self)


def options_from_settings(settings: Settings) -> ScanOptions:
    """Read and check the [scan] section of soundkeep.toml."""
    mode = settings.typed("scan.mode", str)
    if mode not in store.STORE_MODES:
        raise ConfigError("unknown storage mode", field="scan.mode", value=mode,
                          expected=" | ".join(store.STORE_MODES), file=str(settings.path))
    exts = settings.get("scan.extensions")
    if not isinstance(exts, list) or not exts or not all(isinstance(e, str) for e in exts):
        raise ConfigError("expected a list of file name extensions", field="scan.extensions",
                          value=exts, file=str(settings.path))
    sim = settings.typed("scan.link_min_fingerprint_similarity", float, 0.0)
    if sim > 1.0:
        raise ConfigError("too large", field="scan.link_min_fingerprint_similarity", value=sim,
                          expected="a similarity between 0 and 1", file=str(settings.path))
    return ScanOptions(
        mode=mode,
        fingerprint=settings.typed("scan.fingerprint", bool),
        workers=settings.typed("scan.workers", int, 0),
        batch_files=settings.typed("scan.batch_files", int, 1),
        fsync=settings.typed("scan.fsync", bool),
        extensions=tuple(e.lower().lstrip(".") for e in exts),
        link=link.LinkSettings(
            max_duration_diff_ms=round(
                1000 * settings.typed("scan.link_max_duration_diff_s", float, 0.0)),
            min_fingerprint_similarity=sim,
            musicbrainz_source=settings.typed("scan.musicbrainz_source_name", str),
        ),
    )


# -- walking ----------------------------------------------------------------------------------

@dataclass
class Walk:
    """What a walk found: audio-named files, and names that cannot be recorded."""

    files: pa.Table                                        # path, size, mtime_ns (sorted)
    bad_names: list[str] = field(default_factory=list)     # not UTF-8, shown escaped


def walk(roots: Iterable[Path], extensions: tuple[str, ...], exclude: Path | None = None
         ) -> Walk:
    """Every audio-named regular file under the roots (each path once), sorted by path."""
    found: dict[str, tuple[int, int]] = {}
    bad: list[str] = []
    skip = str(exclude) if exclude is not None else None

    def add(path: str, st: os.stat_result) -> None:
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:  # undecodable bytes in the name (surrogate escapes)
            bad.append(os.fsencode(path).decode("utf-8", "backslashreplace"))
            return
        found[path] = (st.st_size, st.st_mtime_ns)

    def visit(d: str) -> None:
        try:
            it = os.scandir(d)
        except OSError:
            return  # unreadable directory: nothing to scan there
        with it:
            for e in it:
                try:
                    if e.is_dir(follow_symlinks=False):
                        if e.path != skip:
                            visit(e.path)
                    elif is_audio_name(e.name, extensions) and e.is_file():
                        add(e.path, e.stat())
                except OSError:
                    continue  # vanished while walking
    for root in roots:
        if root.is_dir():
            visit(str(root))
        elif root.is_file():
            add(str(root), root.stat())
    paths = sorted(found)
    tbl = pa.table({"path": pa.array(paths, pa.string()),
                    "size": pa.array([found[p][0] for p in paths], pa.int64()),
                    "mtime_ns": pa.array([found[p][1] for p in paths], pa.int64())})
    return Walk(tbl, sorted(set(bad)))


# -- the scan -----------------------------------------------------------------------------------

def scan(arch: Archive, dirs: list[Path], opts: ScanOptions,
         on_total: Callable[[int, int], None] | None = None,
         on_progress: Callable[[int, int], None] | None = None) -> ScanReport:
    """Scan directories into the archive's holdings and link what was found.

    on_total(files, bytes) is called once the work is known; on_progress(files, bytes) as
    files are done. Returns a report; bad files are quarantined, never raised.
    """
    started = time.perf_counter()
    report = ScanReport()
    roots = _check_roots(arch, dirs, opts.mode)
    report.roots = [str(r) for r in roots]
    con = arch.con
    store_dir = arch.store_dir
    store.clean_tmp(store_dir)
    found = walk(roots, opts.extensions, exclude=store_dir.resolve())
    walked = found.files
    report.found = walked.num_rows
    # A root where nothing was found (an unmounted drive?) does not forget its paths.
    empty = [r for r in roots if _count_under(walked.column("path"), r) == 0]
    for r in empty:
        report.warnings.append(f"{r}: no audio files found; what was scanned there before "
                               "is kept (is a drive unmounted?)")
    todo, report.gone = _plan(con, walked, [r for r in roots if r not in empty],
                              found.bad_names)
    report.quarantined += len(found.bad_names)
    report.unchanged = report.found - todo.num_rows
    fingerprint = opts.fingerprint
    if todo.num_rows and fingerprint and not fpmod.available():
        fingerprint = False
        report.warnings.append(fpmod.MISSING_WARNING)
    total_bytes = sum(todo.column("size").to_pylist())
    if on_total:
        on_total(todo.num_rows, total_bytes)
    root = arch.root.resolve()
    tasks = [ScanTask(p, s, m, opts.mode, str(root), fingerprint, opts.fsync)
             for p, s, m in zip(todo.column("path").to_pylist(), todo.column("size").to_pylist(),
                                todo.column("mtime_ns").to_pylist(), strict=True)]
    batch: list[FileResult] = []
    t_read = time.perf_counter()
    report.timings["walk"] = round(t_read - started, 3)
    last_flush = time.monotonic()
    writing = 0.0
    for res in _run(tasks, opts.workers):
        report.read += 1
        report.bytes_read += res.size
        if res.status == "changed":
            report.changed_while_reading += 1
        else:
            batch.append(res)
        if len(batch) >= opts.batch_files or time.monotonic() - last_flush > BATCH_SECONDS:
            t = time.perf_counter()
            _write_batch(con, batch, opts.mode, report)
            writing += time.perf_counter() - t
            batch, last_flush = [], time.monotonic()
        if on_progress:
            on_progress(1, res.size)
    if batch:
        t = time.perf_counter()
        _write_batch(con, batch, opts.mode, report)
        writing += time.perf_counter() - t
    t_link = time.perf_counter()
    report.timings["read"] = round(t_link - t_read, 3)
    report.timings["write"] = round(writing, 3)  # part of read: catalog batches
    _finish(con, opts, report)
    done = time.perf_counter()
    report.timings["link"] = round(done - t_link, 3)
    report.seconds = round(done - started, 3)
    return report


def _count_under(paths: pa.ChunkedArray | pa.Array | list[str], root: Path) -> int:
    """How many of the paths are the root or lie under it (set work on the walk's column)."""
    col = pa.array(paths, pa.string()) if isinstance(paths, list) else paths
    prefix = str(root).rstrip(os.sep) + os.sep
    hit = pc.or_(pc.equal(col, str(root)), pc.starts_with(col, prefix))
    return int(pc.sum(hit).as_py() or 0)


def _check_roots(arch: Archive, dirs: list[Path], mode: str) -> list[Path]:
    if mode not in store.STORE_MODES:
        raise ConfigError("unknown storage mode", field="mode", value=mode,
                          expected=" | ".join(store.STORE_MODES))
    if not dirs:
        raise InputError("nothing to scan", expected="at least one directory")
    roots = []
    for d in dirs:
        if not d.exists():
            raise InputError("no such directory", file=str(d), expected="a directory to scan")
        roots.append(d.resolve())
    if mode == "link":
        arch.store_dir.mkdir(parents=True, exist_ok=True)
        dev = arch.store_dir.stat().st_dev
        for r in roots:
            if r.stat().st_dev != dev:
                raise InputError("cannot hard-link into the store from another file system",
                                 file=str(r), expected="--copy or --in-place for this directory")
    return roots


def _plan(con: duckdb.DuckDBPyConnection, walked: pa.Table, roots: list[Path],
          bad_names: list[str]) -> tuple[pa.Table, int]:
    """Set work: which walked paths are new or changed; forget paths that are gone; quarantine
    names that cannot be recorded."""
    prefixes = pa.table({"root": [str(r) for r in roots],
                         "prefix": [str(r).rstrip(os.sep) + os.sep for r in roots]})
    con.complete()  # DuckDB 2: no registering while a result is open
    con.register("sk_walk", walked)
    con.register("sk_roots", prefixes)
    try:
        todo = con.sql("""
            SELECT w.path, w.size, w.mtime_ns FROM sk_walk w
            LEFT JOIN scan_paths s USING (path)
            WHERE s.path IS NULL OR s.size <> w.size OR s.mtime_ns <> w.mtime_ns
            ORDER BY w.path""").to_arrow_table()
        with db.transaction(con):
            con.execute("""
                CREATE OR REPLACE TEMP TABLE sk_gone AS
                SELECT s.path FROM scan_paths s
                WHERE EXISTS (SELECT 1 FROM sk_roots r
                              WHERE s.path = r.root OR starts_with(s.path, r.prefix))
                  AND s.path NOT IN (SELECT path FROM sk_walk)""")
            row = con.execute("SELECT count(*) FROM sk_gone").fetchall()[0]
            con.execute("DELETE FROM scan_paths WHERE path IN (SELECT path FROM sk_gone)")
            con.execute("""DELETE FROM quarantine WHERE stage = 'scan'
                           AND source_file IN (SELECT path FROM sk_gone)""")
            con.execute("DROP TABLE sk_gone")
            for name in bad_names:  # rare: one statement each is fine
                con.execute("DELETE FROM quarantine WHERE stage = 'scan' AND source_file = ?",
                            [name])
                con.execute(
                    "INSERT INTO quarantine VALUES ('scan', ?, NULL, 'path', NULL, ?, now())",
                    [name, "the file name is not valid UTF-8; rename the file to scan it"])
    finally:
        con.unregister("sk_walk")
        con.unregister("sk_roots")
    return todo, int(row[0]) if row else 0


def _chunks(tasks: list[ScanTask]) -> Iterator[list[ScanTask]]:
    # Largest files first, so that the pool does not end waiting on one big file.
    cur: list[ScanTask] = []
    size = 0
    for t in sorted(tasks, key=lambda t: -t.size):
        cur.append(t)
        size += t.size
        if len(cur) >= TASK_FILES or size >= TASK_BYTES:
            yield cur
            cur, size = [], 0
    if cur:
        yield cur


def _worker_init() -> None:
    """Workers leave Ctrl-C to the main process, which stops the pool and keeps what it wrote;
    they load the demuxer and tag libraries while the first tasks are being sent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    preload_libraries()


def _mp_context() -> multiprocessing.context.BaseContext:
    """How workers start: forked on Linux, spawned elsewhere.

    A spawned worker starts an interpreter and imports PyAV, mutagen and this package (about
    0.2 s of CPU each, per scan); a forked one is ready in milliseconds. Forking is safe here
    although the parent runs DuckDB's threads: a worker only runs probe code (hashlib, PyAV,
    mutagen), never DuckDB, and leaves through os._exit.
    """
    if sys.platform == "linux" and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _run(tasks: list[ScanTask], workers: int,
         work: Callable[[list[ScanTask]], list[FileResult]] = probe_many
         ) -> Iterator[FileResult]:
    """Results for every task, from a process pool (or in this process for one worker)."""
    n = workers or (os.cpu_count() or 1)
    if n <= 1 or len(tasks) <= 1:
        for t in tasks:
            yield from work([t])
        return
    ctx = _mp_context()
    if ctx.get_start_method() == "fork":
        # Loaded once here, the libraries come with every forked worker (and every later pool
        # of this process) instead of being imported by each worker.
        preload_libraries()
    queue = list(_chunks(tasks))
    queue.reverse()
    suspects: list[ScanTask] = []  # files in flight when a worker died
    while queue or suspects:
        # When a worker dies (a decoder crash on some file), every task in flight fails with
        # it; those files are then run one at a time in a fresh pool, so that a crash names
        # its file, which is quarantined while every other file is scanned.
        alone = not queue
        pending = queue if queue else [[t] for t in reversed(suspects)]
        if alone:
            suspects = []
        crashed: list[list[ScanTask]] = []
        with ProcessPoolExecutor(max_workers=1 if alone else n, mp_context=ctx,
                                 initializer=_worker_init) as pool:
            running: dict[Future[list[FileResult]], list[ScanTask]] = {}
            try:
                while pending or running:
                    while pending and len(running) < (1 if alone else IN_FLIGHT * n):
                        with warnings.catch_warnings():
                            # Python 3.12+ warns about forking a threaded process (see
                            # _mp_context for why these workers are safe).
                            warnings.filterwarnings("ignore", "This process .* is multi-threaded",
                                                    DeprecationWarning)
                            running[pool.submit(work, pending[-1])] = pending[-1]
                        pending.pop()
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for fut in done:
                        chunk = running.pop(fut)
                        try:
                            results = fut.result()
                        except BrokenProcessPool:
                            crashed.append(chunk)
                            continue
                        yield from results
            except BrokenProcessPool:
                crashed.extend(running.values())
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
        if alone:
            suspects = [t for chunk in reversed(pending) for t in chunk]
        for chunk in crashed:
            if alone:
                t = chunk[0]
                yield FileResult(t.path, t.size, t.mtime_ns, status="quarantined",
                                 reason="the decoder crashed on this file")
            else:
                suspects.extend(chunk)


# -- writing ------------------------------------------------------------------------------------

def _batch_table(results: list[FileResult]) -> pa.Table:
    cols: dict[str, list[Any]] = {k: [] for k in (
        "path", "size", "mtime_ns", "status", "reason", "sha256", "container", "codec",
        "bitrate", "sample_rate", "channels", "duration_ms", "tag_title", "tag_artists",
        "tag_album", "tag_isrc", "tag_mb_recording_id", "tag_track_number", "tag_disc_number",
        "fingerprint", "fingerprint_raw")}
    for r in results:
        for k, v in cols.items():
            v.append(getattr(r, k))
    types = {"size": pa.int64(), "mtime_ns": pa.int64(), "bitrate": pa.int64(),
             "sample_rate": pa.int32(), "channels": pa.int16(), "duration_ms": pa.int64(),
             "tag_track_number": pa.int16(), "tag_disc_number": pa.int16(),
             "tag_artists": pa.list_(pa.string()), "fingerprint_raw": pa.list_(pa.uint32())}
    return pa.table({k: pa.array(v, types.get(k, pa.string())) for k, v in cols.items()})


def _write_batch(con: duckdb.DuckDBPyConnection, results: list[FileResult], mode: str,
                 report: ScanReport) -> None:
    """Record one batch of scanned files in one transaction."""
    tbl = _batch_table(results)
    con.complete()
    con.register("sk_batch", tbl)
    try:
        with db.transaction(con):
            con.execute("""
                CREATE OR REPLACE TEMP TABLE sk_new AS
                SELECT * FROM sk_batch
                WHERE status = 'ok' AND sha256 NOT IN (SELECT sha256 FROM audio_files)
                QUALIFY row_number() OVER (PARTITION BY sha256 ORDER BY path) = 1""")
            store_path = ("b.path" if mode == "in_place" else
                          "'store/' || b.sha256[1:2] || '/' || b.sha256[3:4] || '/' || b.sha256")
            isrc = identifiers.sql_normalize_isrc("b.tag_isrc")
            con.execute(f"""
                INSERT INTO audio_files BY NAME
                SELECT b.sha256, b.size, {store_path} AS store_path, ? AS storage_mode,
                       b.container, b.codec, b.bitrate, b.sample_rate, b.channels, b.duration_ms,
                       b.tag_title, nullif(array_to_string(b.tag_artists, '; '), '') AS tag_artist,
                       b.tag_album, nullif({isrc}, '') AS tag_isrc, b.tag_mb_recording_id,
                       b.tag_track_number, b.tag_disc_number, b.fingerprint, now() AS first_seen,
                       b.tag_artists, b.fingerprint_raw, {file_key_sql("b.sha256")} AS file_key
                FROM sk_new b""", [mode])
            con.execute(f"""
                INSERT INTO audio_fp_terms
                SELECT term, sha256, min(pos) FROM (
                    SELECT sha256, unnest(fingerprint_raw) AS term,
                           unnest(range(len(fingerprint_raw))) AS pos
                    FROM sk_new WHERE fingerprint_raw IS NOT NULL
                ) GROUP BY ALL
                HAVING sha256 IN (
                    SELECT sha256 FROM sk_new WHERE fingerprint_raw IS NOT NULL
                    AND len(list_distinct(fingerprint_raw)) >= {fpmod.MIN_DISTINCT_TERMS})""")
            con.execute("DELETE FROM scan_paths WHERE path IN (SELECT path FROM sk_batch)")
            con.execute("""INSERT INTO scan_paths
                           SELECT path, size, mtime_ns, sha256, now() FROM sk_batch""")
            con.execute("""DELETE FROM quarantine WHERE stage = 'scan'
                           AND source_file IN (SELECT path FROM sk_batch)""")
            con.execute("""INSERT INTO quarantine
                           SELECT 'scan', path, NULL, NULL, NULL, reason, now()
                           FROM sk_batch WHERE status = 'quarantined'""")
            row = con.execute("""SELECT (SELECT count(*) FROM sk_new),
                                        count(*) FILTER (WHERE status = 'ok'),
                                        count(*) FILTER (WHERE status = 'quarantined')
                                 FROM sk_batch""").fetchall()[0]
            con.execute("DROP TABLE sk_new")
    finally:
        con.unregister("sk_batch")
    if row:
        report.new_contents += int(row[0])
        report.duplicates += int(row[1]) - int(row[0])
        report.quarantined += int(row[2])


def _finish(con: duckdb.DuckDBPyConnection, opts: ScanOptions, report: ScanReport) -> None:
    """Fix in-place holdings whose path changed or vanished, match fingerprints, link."""
    with db.transaction(con):
        _settle_in_place(con)
        report.fingerprint_pairs = fpmod.match_new(con, opts.link.min_fingerprint_similarity)
        report.links = link.link_pending(con, opts.link)


def _settle_in_place(con: duckdb.DuckDBPyConnection) -> None:
    """A file kept in place lives at its first path (in sort order) still holding its content;
    when no scanned path holds it any more, the archive no longer has it."""
    con.execute("""
        UPDATE audio_files f SET store_path = p.path
        FROM (SELECT sha256, min(path) AS path FROM scan_paths
              WHERE sha256 IS NOT NULL GROUP BY sha256) p
        WHERE f.storage_mode = 'in_place' AND f.sha256 = p.sha256 AND f.store_path <> p.path""")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE sk_lost AS
        SELECT sha256 FROM audio_files WHERE storage_mode = 'in_place'
          AND sha256 NOT IN (SELECT sha256 FROM scan_paths WHERE sha256 IS NOT NULL)""")
    for table, col in (("audio_links", "sha256"), ("audio_link_candidates", "sha256"),
                       ("audio_fp_terms", "sha256"), ("audio_fp_matches", "sha256"),
                       ("audio_fp_matches", "other_sha256"), ("audio_files", "sha256")):
        con.execute(f"DELETE FROM {table} WHERE {col} IN (SELECT sha256 FROM sk_lost)")
    con.execute("DROP TABLE sk_lost")


# -- holdings ----------------------------------------------------------------------------------

_BITRATE_BANDS = [(0, 64), (64, 128), (128, 192), (192, 256), (256, 320), (320, 1000000)]


def holdings(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """The archive's holdings: files, bytes, links by method, codecs, bitrates, duplicates."""
    row = con.execute("""
        SELECT count(*), coalesce(sum(size), 0), coalesce(sum(duration_ms), 0),
               count(*) FILTER (WHERE fingerprint IS NOT NULL)
        FROM audio_files""").fetchall()[0]
    files, nbytes, dur_ms, fps = (int(v) for v in row) if row else (0, 0, 0, 0)
    links = dict(con.execute("""
        SELECT coalesce(l.method, 'not_linked_yet'), count(*)
        FROM audio_files f LEFT JOIN audio_links l USING (sha256) GROUP BY ALL""").fetchall())
    linked = sum(n for m, n in links.items() if m in link.METHODS)
    by_codec = {str(c): {"files": int(n), "bytes": int(b)} for c, n, b in con.execute("""
        SELECT coalesce(codec, 'unknown'), count(*), sum(size) FROM audio_files
        GROUP BY ALL ORDER BY 2 DESC, 1""").fetchall()}
    bands = " ".join(f"WHEN bitrate < {hi * 1000} THEN '{lo}-{hi}'"
                     for lo, hi in _BITRATE_BANDS[:-1])
    by_bitrate = dict(con.execute(f"""
        SELECT CASE WHEN bitrate IS NULL THEN 'unknown' {bands}
                    ELSE '{_BITRATE_BANDS[-1][0]}+' END AS band, count(*)
        FROM audio_files GROUP BY ALL ORDER BY min(bitrate) NULLS LAST""").fetchall())
    by_mode = dict(con.execute("""SELECT storage_mode, count(*) FROM audio_files
                                  GROUP BY ALL ORDER BY 1""").fetchall())
    dup = con.execute("""
        WITH g AS (
            SELECT sha256, least(sha256, min(other_sha256)) AS grp
            FROM audio_fp_matches GROUP BY sha256
        )
        SELECT count(DISTINCT grp), count(*), coalesce(sum(f.size), 0)
        FROM g JOIN audio_files f USING (sha256)""").fetchall()[0]
    paths = con.execute("""SELECT count(*) FILTER (WHERE sha256 IS NOT NULL)
                           FROM scan_paths""").fetchall()[0]
    quarantined = con.execute("""SELECT count(*) FROM quarantine
                                 WHERE stage = 'scan'""").fetchall()[0]
    tracks = con.execute("""SELECT count(DISTINCT track_id) FROM audio_links
                            WHERE track_id IS NOT NULL""").fetchall()[0]
    return {
        "files": files,
        "bytes": nbytes,
        "duration_s": round(dur_ms / 1000, 3),
        "paths": int(paths[0]) if paths else 0,
        "linked": linked,
        "unlinked": files - linked,
        "ambiguous": int(links.get("ambiguous", 0)),
        "linked_tracks": int(tracks[0]) if tracks else 0,
        "quarantined": int(quarantined[0]) if quarantined else 0,
        "fingerprinted": fps,
        "by_link_method": {m: int(links.get(m, 0)) for m in link.METHODS},
        "by_codec": by_codec,
        "by_bitrate_kbps": {str(k): int(v) for k, v in by_bitrate.items()},
        "by_storage_mode": {str(k): int(v) for k, v in by_mode.items()},
        "duplicates_by_fingerprint": {
            "groups": int(dup[0]) if dup else 0,
            "files": int(dup[1]) if dup else 0,
            "bytes": int(dup[2]) if dup else 0,
        },
    }
