"""Ingest is idempotent, survives SIGKILL at any point, and applies the rights policy."""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
from catfix import PLAIN_HEADER, dump_catalog, query, run_cli, set_setting, write_csv
from hypothesis import given, settings
from hypothesis import strategies as st

from soundkeep import archive, config


def ingest_json(root: Path, *args: str | Path, code: int = 0) -> dict[str, Any]:
    res = run_cli("ingest", *args, "-a", root, "--json")
    assert res.code == code, res.err
    assert "Traceback" not in res.err
    summary = res.json()
    assert summary["rows_read"] == summary["rows_accepted"] + summary["rows_quarantined"]
    return summary


def mixed_inputs(d: Path, synth: Path, n_csv: int = 300, n_json: int = 200) -> Path:
    """A directory of sources of every kind: a synthetic catalog, a CSV and a JSON Lines file
    with some bad rows, and a file that is refused whole."""
    for f in synth.iterdir():
        shutil.copy(f, d / f.name)
    rows = []
    for i in range(n_csv):
        isrc = f"USAB1{i % 100:02d}{i:05d}" if i % 9 else "BAD"
        rows.append([f"Song {i}", f"Artist {i % 37}", f"Album {i % 53}", isrc,
                     str(60_000 + i) if i % 31 else "-1", str(i % 101)])
    write_csv(d / "tracks_more.csv", PLAIN_HEADER, rows)
    lines = []
    for i in range(n_json):
        doc = {"id": f"j{i % (n_json - 10)}", "title": f"Json {i}",
               "artists": [f"Artist {i % 11}", f"Guest {i % 5}"], "album": f"LP {i % 7}",
               "explicit": i % 2 == 0, "popularity": i % 60}
        lines.append(json.dumps(doc) if i % 17 else "{oops")
    (d / "tracks_zjson.jsonl").write_text("\n".join(lines) + "\n")
    (d / "tracks_zz.csv").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    return d


def test_same_files_twice_change_nothing(new_archive: Callable[..., Path], data_dir: Path,
                                         synth_small: Path) -> None:
    """Ingesting the same files again leaves every table exactly as it was."""
    root = new_archive()
    src = mixed_inputs(data_dir, synth_small)
    first = ingest_json(root, src, code=2)  # one file is refused: exit 2, the rest ingested
    assert first["refused_files"] == 1
    assert first["rows_quarantined"] > 0 and first["rows_accepted"] > 3000
    before = dump_catalog(root)
    assert len(before["tracks"]) > 3000 and len(before["quarantine"]) > 0
    again = ingest_json(root, src, code=2)
    assert [f["skipped"] for f in again["files"] if not f["error"]] == [True] * 5
    # The summary of a skipped file repeats what it held.
    assert [(f["rows_read"], f["rows_accepted"]) for f in again["files"]] == \
        [(f["rows_read"], f["rows_accepted"]) for f in first["files"]]
    assert dump_catalog(root) == before
    # One of the files on its own is skipped too.
    alone = ingest_json(root, src / "tracks_more.csv")
    assert alone["files"][0]["skipped"]
    assert dump_catalog(root) == before


def test_stable_ids_and_changed_source(new_archive: Callable[..., Path], data_dir: Path
                                       ) -> None:
    """soundkeep ids depend on the source and its keys only: two archives agree, and a
    changed file of the same source updates its rows in place instead of adding new ones."""
    v1 = write_csv(data_dir / "shop.csv", ["id", "title", "artist"],
                   [["k1", "One", "Ann"], ["k2", "Two", "Ann"], ["k3", "Three", "Bo"]])
    a, b = new_archive("a"), new_archive("b")
    ingest_json(a, v1)
    ingest_json(b, v1)
    sql = "SELECT track_id, title, source_key FROM tracks ORDER BY source_key"
    ids_a = query(a, sql)
    assert ids_a == query(b, sql)
    assert len({r[0] for r in ids_a}) == 3
    v2 = data_dir / "v2"
    v2.mkdir()
    write_csv(v2 / "shop.csv", ["id", "title", "artist"],
              [["k1", "One (remaster)", "Ann"], ["k2", "Two", "Ann"], ["k4", "Four", "Bo"]])
    ingest_json(a, v2 / "shop.csv")
    after = query(a, sql)
    assert [(r[1], r[2]) for r in after] == [("One (remaster)", "k1"), ("Two", "k2"),
                                             ("Three", "k3"), ("Four", "k4")]
    assert after[0][0] == ids_a[0][0] and after[1][0] == ids_a[1][0]
    # Credits were replaced, not doubled.
    assert query(a, "SELECT count(*), count(DISTINCT track_id) FROM track_artists") == [(4, 4)]


KILLER = r"""
import os, signal, sys
from soundkeep.catalog import ingest as m

kill_at = int(os.environ["KILL_AT_BATCH"])
orig = m._Context.load
count = 0

def load(self, batch):
    global count
    orig(self, batch)
    count += 1
    sys.stderr.write(f"@batch {count}\n")
    sys.stderr.flush()

m._Context.load = load
from soundkeep.cli import main
sys.argv = ["soundkeep", "ingest", *sys.argv[1:]]
main()
"""


def run_and_kill(root: Path, src: Path, script: Path, kill_at: int) -> int:
    """Run `soundkeep ingest` in a child process and SIGKILL it once it has loaded `kill_at`
    batches (it is then inside a file's transaction). Returns the child's return code."""
    env = {**os.environ, "KILL_AT_BATCH": str(kill_at)}
    env.pop("SOUNDKEEP_ARCHIVE", None)
    proc = subprocess.Popen([sys.executable, str(script), str(src), "-a", str(root), "--json"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            text=True)
    assert proc.stderr is not None
    try:
        for line in proc.stderr:
            if line.strip() == f"@batch {kill_at}":
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.stderr.close()
        code = proc.wait(timeout=120)
    return code


def test_killed_ingest_resumes_to_the_same_catalog(new_archive: Callable[..., Path],
                                                   data_dir: Path, synth_small: Path,
                                                   tmp_path: Path) -> None:
    """SIGKILL a running `soundkeep ingest` twice, mid-file, then run it again: the catalog
    (every table, every row, clock times aside) equals one uninterrupted run's."""
    src = mixed_inputs(data_dir, synth_small, n_csv=3000, n_json=1500)
    (src / "tracks_zz.csv").unlink()
    clean, killed = new_archive("clean"), new_archive("killed")
    for root in (clean, killed):
        set_setting(root, "ingest", "batch_rows", "100")
    ingest_json(clean, src)
    expected = dump_catalog(clean)
    assert len(expected["sources"]) == 5

    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    # The 3 Parquet files are one batch each, then the CSV is 30 batches and the JSON Lines
    # file 15: batch 10 is inside the CSV. On the second run the Parquet files are skipped,
    # so its batch 35 is inside the JSON Lines file.
    assert run_and_kill(killed, src, script, 10) == -signal.SIGKILL
    partial = dump_catalog(killed)
    assert len(partial["sources"]) == 3  # the Parquet files are in, the CSV is not
    assert partial["tracks"] == [r for r in expected["tracks"] if r[12] <= 3]  # source_id
    assert partial["quarantine"] == []
    assert run_and_kill(killed, src, script, 35) == -signal.SIGKILL
    assert len(dump_catalog(killed)["sources"]) == 4
    ingest_json(killed, src)
    assert dump_catalog(killed) == expected


# -- rights ------------------------------------------------------------------------------------

STATUSES = ["public_domain", "CC0-1.0", "CC-BY-4.0", "CC-BY-NC-SA-3.0", "licensed_by_rightsholder",
            "all_rights_reserved", "unknown", ""]


def rights_file(d: Path) -> Path:
    return write_csv(d / "rights.csv", ["title", "rights_status"],
                     [[f"T {s or 'blank'}", s] for s in STATUSES])


def distributable(root: Path) -> dict[str, bool]:
    return dict(query(root, "SELECT rights_status, distributable FROM tracks"))


def test_rights_policy_default_and_change(new_archive: Callable[..., Path], data_dir: Path
                                          ) -> None:
    """distributable follows [rights] distributable in soundkeep.toml; changing the policy
    and reopening the archive recomputes it for every track already in the catalog."""
    root = new_archive()
    ingest_json(root, rights_file(data_dir))
    assert distributable(root) == {
        "public_domain": True, "CC0-1.0": True, "CC-BY-4.0": True, "CC-BY-NC-SA-3.0": True,
        "licensed_by_rightsholder": True, "all_rights_reserved": False, "unknown": False}
    stats = run_cli("stats", "-a", root, "--json").json()
    assert stats["distributable"] == 5  # the blank status became "unknown": not distributable

    set_setting(root, "rights", "distributable", '["CC0-1.0", "CC-BY-?.0", "public_domain"]')
    stats = run_cli("stats", "-a", root, "--json").json()
    assert stats["distributable"] == 3
    assert distributable(root) == {
        "public_domain": True, "CC0-1.0": True, "CC-BY-4.0": True, "CC-BY-NC-SA-3.0": False,
        "licensed_by_rightsholder": False, "all_rights_reserved": False, "unknown": False}
    # New rows follow the new policy as they arrive.
    more = write_csv(data_dir / "more.csv", ["title", "license"],
                     [["X", "CC-BY-3.0"], ["Y", "licensed_by_rightsholder"]])
    ingest_json(root, more)
    assert query(root, "SELECT title, distributable FROM tracks WHERE title IN ('X', 'Y') "
                       "ORDER BY 1") == [("X", True), ("Y", False)]

    set_setting(root, "rights", "distributable", "[]")
    with archive.open_archive(root) as arch:
        assert arch.con.execute("SELECT count(*) FILTER (WHERE distributable) FROM tracks"
                                ).fetchall() == [(0,)]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text("CBY-0*?a.", min_size=1, max_size=6), max_size=4),
       st.lists(st.text("CBY-0a.", max_size=8), min_size=1, max_size=8))
def test_rights_policy_sql_matches_python(patterns: list[str], statuses: list[str]) -> None:
    """The policy as SQL (GLOB) decides like Settings.is_distributable (fnmatch)."""
    s = config.Settings({"rights": {"distributable": patterns}})
    con = duckdb.connect()
    try:
        got = con.execute(f"SELECT {archive.rights_sql(s, 'x')} FROM (SELECT unnest(?) AS x)",
                          [statuses]).fetchall()
    finally:
        con.close()
    for status, (sql_says,) in zip(statuses, got, strict=True):
        assert sql_says == s.is_distributable(status), (patterns, status)
        assert sql_says == any(fnmatch.fnmatchcase(status, p) for p in patterns)


def test_bad_rights_policy_is_a_config_error(new_archive: Callable[..., Path]) -> None:
    """A policy that is not a list of strings is one clear line, exit 2."""
    root = new_archive()
    set_setting(root, "rights", "distributable", '"CC-*"')
    res = run_cli("stats", "-a", root)
    assert res.code == 2
    assert res.error_lines() == [res.error_lines()[0]]
    assert "rights.distributable" in res.err and "list of strings" in res.err


@pytest.mark.parametrize("status", ["public_domain", "CC-BY-SA-4.0"])
def test_rights_status_survives_reopen(status: str, new_archive: Callable[..., Path],
                                       data_dir: Path) -> None:
    """Reopening with an unchanged policy recomputes nothing and keeps the answer."""
    root = new_archive()
    ingest_json(root, write_csv(data_dir / "r.csv", ["title", "rights"], [["A", status]]))
    for _ in range(2):
        assert distributable(root) == {status: True}
        run_cli("stats", "-a", root, "--json")


def test_files_are_recorded_by_absolute_path(new_archive: Callable[..., Path], data_dir: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Files named relative to the current directory are recorded by their absolute path:
    accepted, quarantined rows and refused files alike, so provenance does not depend on where
    the command ran."""
    root = new_archive()
    write_csv(data_dir / "good.csv", ["title", "popularity"], [["A", 1], ["B", 300]])
    (data_dir / "bad.csv").write_bytes(b"%PDF-1.4\n" + bytes(20))
    monkeypatch.chdir(data_dir)
    summary = ingest_json(root, Path("good.csv"), Path("bad.csv"), code=2)
    assert [f["file"] for f in summary["files"]] == [str(data_dir / "good.csv"),
                                                      str(data_dir / "bad.csv")]
    assert query(root, "SELECT source_file FROM sources") == [(str(data_dir / "good.csv"),)]
    assert query(root, "SELECT source_file, row_number FROM quarantine ORDER BY 1") == [
        (str(data_dir / "bad.csv"), None), (str(data_dir / "good.csv"), 2)]
