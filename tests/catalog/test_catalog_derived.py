"""Columns of tracks derived from other rows (catalog.derived): kept by ingest in any order,
by the migration that added them, and by refresh after edits by hand."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from catfix import query, run_cli

from soundkeep import archive, db
from soundkeep.catalog import derived

# Tracks whose stored derived values differ from those of their artists and release.
STALE = f"""
    SELECT count(*) FROM tracks t
    LEFT JOIN ({derived.maxima_sql()}) m USING (track_id)
    LEFT JOIN releases r ON r.release_id = t.release_id
    WHERE t.artist_popularity IS DISTINCT FROM m.pop
       OR t.artist_followers IS DISTINCT FROM m.fol
       OR t.release_popularity IS DISTINCT FROM r.popularity"""
KNOWN = ("SELECT count(artist_popularity), count(artist_followers), count(release_popularity) "
         "FROM tracks")
DERIVED = ("SELECT track_id, artist_popularity, artist_followers, release_popularity "
           "FROM tracks ORDER BY 1")


def ingest(root: Path, *paths: Path) -> None:
    res = run_cli("ingest", *paths, "-a", root, "--json")
    assert res.code == 0, res.err


def test_ingest_keeps_the_maxima_whatever_comes_first(new_archive: Callable[..., Path],
                                                       synth_small: Path) -> None:
    together, tracks_first = new_archive("together"), new_archive("tracks_first")
    ingest(together, synth_small)
    assert query(together, STALE) == [(0,)]
    n_pop, n_fol, n_rel = query(together, KNOWN)[0]
    assert n_pop > 1000 and n_fol > 1000 and n_rel > 1000

    ingest(tracks_first, synth_small / "tracks.parquet")
    # Artists and releases not in the catalog yet: nothing known, and nothing made up.
    assert query(tracks_first, KNOWN) == [(0, 0, 0)]
    ingest(tracks_first, synth_small / "artists.parquet", synth_small / "releases.parquet")
    assert query(tracks_first, STALE) == [(0,)]
    assert query(tracks_first, DERIVED) == query(together, DERIVED)


@pytest.mark.parametrize(("entity", "column", "derived_column"), [
    ("artists", "followers", "artist_followers"),
    ("releases", "popularity", "release_popularity"),
])
def test_a_newer_file_updates_the_tracks_it_concerns(
        new_archive: Callable[..., Path], synth_small: Path, data_dir: Path, entity: str,
        column: str, derived_column: str) -> None:
    root = new_archive()
    ingest(root, synth_small)
    before = dict(query(root, f"SELECT track_id, {derived_column} FROM tracks"))
    # The same source's file a year later: every value has grown (popularity stays <= 100).
    table = pq.read_table(synth_small / f"{entity}.parquet")
    values = table.column(column)
    grown = pc.multiply(values, 10) if column == "followers" else pc.add(values, 1)
    pq.write_table(table.set_column(table.schema.get_field_index(column), column, grown),
                   data_dir / f"{entity}.parquet")
    ingest(root, data_dir / f"{entity}.parquet")
    assert query(root, STALE) == [(0,)]
    after = dict(query(root, f"SELECT track_id, {derived_column} FROM tracks"))
    changed = [t for t, f in before.items() if f is not None]
    assert changed and all(after[t] == (before[t] * 10 if column == "followers"
                                        else before[t] + 1) for t in changed)


def test_the_migration_fills_the_maxima_of_an_older_catalog(
        new_archive: Callable[..., Path], synth_small: Path) -> None:
    root = new_archive()
    ingest(root, synth_small)
    want = query(root, DERIVED)
    # The catalog as schema version 1 left it: no such columns.
    con = duckdb.connect(str(root / "catalog.duckdb"))
    for col in ("artist_popularity", "artist_followers", "release_popularity"):
        con.execute(f"ALTER TABLE tracks DROP COLUMN {col}")
    db.set_meta(con, "schema_version.catalog", "1")
    con.close()
    with archive.open_archive(root) as arch:
        assert int(db.get_meta(arch.con, "schema_version.catalog") or 0) >= 2
    assert query(root, DERIVED) == want


@pytest.mark.parametrize("rewrite", [False, True])
def test_refresh_repairs_edits_by_hand(new_archive: Callable[..., Path], synth_small: Path,
                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       rewrite: bool) -> None:
    """In place, or (past UPDATE_MAX changed rows) by writing the table anew: the same rows
    in the same order under the same definition, the maxima repaired."""
    if rewrite:
        monkeypatch.setattr(derived, "UPDATE_MAX", 0)
    root = new_archive()
    ingest(root, synth_small)
    copy = tmp_path / "copy.duckdb"
    shutil.copy(root / "catalog.duckdb", copy)
    con = duckdb.connect(str(copy))
    try:
        ids = [r[0] for r in con.execute(
            "SELECT track_id FROM tracks WHERE artist_popularity IS NOT NULL "
            "ORDER BY track_id LIMIT 3").fetchall()]
        con.execute("UPDATE tracks SET artist_popularity = artist_popularity + 1 "
                    "WHERE track_id = ?", [ids[0]])
        con.execute("UPDATE artists SET followers = 7 WHERE artist_id IN "
                    "(SELECT artist_id FROM track_artists WHERE track_id = ?)", [ids[1]])
        con.execute("DELETE FROM track_artists WHERE track_id = ?", [ids[2]])
        con.execute("UPDATE releases SET popularity = 1 WHERE release_id IN "
                    "(SELECT release_id FROM tracks WHERE track_id = ?)", [ids[1]])
        stale = con.execute(STALE).fetchall()[0][0]
        assert stale >= 3
        ddl = "SELECT sql FROM duckdb_tables() WHERE table_name = 'tracks'"
        before = con.execute(ddl).fetchall()
        other = ("SELECT * EXCLUDE (artist_popularity, artist_followers, release_popularity) "
                 "FROM tracks")
        rows = con.execute(other).fetchall()
        assert derived.refresh(con) == stale
        assert con.execute(STALE).fetchall()[0][0] == 0
        assert con.execute(ddl).fetchall() == before
        assert con.execute(other).fetchall() == rows
        assert con.execute("SELECT artist_popularity, artist_followers FROM tracks "
                           "WHERE track_id = ?", [ids[2]]).fetchall() == [(None, None)]
        assert derived.refresh(con) == 0
    finally:
        con.close()


def test_the_refresh_command_repairs_an_edit_by_hand(new_archive: Callable[..., Path],
                                                     synth_small: Path) -> None:
    root = new_archive()
    ingest(root, synth_small)
    con = duckdb.connect(str(root / "catalog.duckdb"))
    con.execute("UPDATE artists SET popularity = 100")
    con.close()
    stale = query(root, STALE)[0][0]
    assert stale > 100
    res = run_cli("refresh", "-a", root, "--json")
    assert res.code == 0, res.err
    assert res.json() == {"tracks_changed": stale}
    assert query(root, STALE) == [(0,)]
    assert run_cli("refresh", "-a", root, "--json").json() == {"tracks_changed": 0}
