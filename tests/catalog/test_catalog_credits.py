"""Per-track artist maxima (catalog.credits): kept by ingest in any order, by the migration
that added them, and by refresh after edits by hand."""

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
from soundkeep.catalog import credits

# Tracks whose stored maxima differ from their credits' (NULL when no artist is known).
STALE = f"""
    SELECT count(*) FROM tracks t LEFT JOIN ({credits.maxima_sql()}) m USING (track_id)
    WHERE t.artist_popularity IS DISTINCT FROM m.pop
       OR t.artist_followers IS DISTINCT FROM m.fol"""
KNOWN = "SELECT count(artist_popularity), count(artist_followers) FROM tracks"


def ingest(root: Path, *paths: Path) -> None:
    res = run_cli("ingest", *paths, "-a", root, "--json")
    assert res.code == 0, res.err


def test_ingest_keeps_the_maxima_whatever_comes_first(new_archive: Callable[..., Path],
                                                       synth_small: Path) -> None:
    together, tracks_first = new_archive("together"), new_archive("tracks_first")
    ingest(together, synth_small)
    assert query(together, STALE) == [(0,)]
    n_pop, n_fol = query(together, KNOWN)[0]
    assert n_pop > 1000 and n_fol > 1000

    ingest(tracks_first, synth_small / "tracks.parquet")
    # Credited artists not in the catalog yet: no maxima, and none is made up.
    assert query(tracks_first, KNOWN) == [(0, 0)]
    ingest(tracks_first, synth_small / "artists.parquet", synth_small / "releases.parquet")
    assert query(tracks_first, STALE) == [(0,)]
    assert query(tracks_first, "SELECT track_id, artist_popularity, artist_followers "
                               "FROM tracks ORDER BY 1") == \
        query(together, "SELECT track_id, artist_popularity, artist_followers FROM tracks "
                        "ORDER BY 1")


def test_a_newer_artist_file_updates_the_tracks_crediting_them(
        new_archive: Callable[..., Path], synth_small: Path, data_dir: Path) -> None:
    root = new_archive()
    ingest(root, synth_small)
    before = dict(query(root, "SELECT track_id, artist_followers FROM tracks"))
    # The same source's artists a year later: every follower count has grown tenfold.
    table = pq.read_table(synth_small / "artists.parquet")
    grown = table.set_column(table.schema.get_field_index("followers"), "followers",
                             pc.multiply(table.column("followers"), 10))
    pq.write_table(grown, data_dir / "artists.parquet")
    ingest(root, data_dir / "artists.parquet")
    assert query(root, STALE) == [(0,)]
    after = dict(query(root, "SELECT track_id, artist_followers FROM tracks"))
    changed = [t for t, f in before.items() if f is not None]
    assert changed and all(after[t] == before[t] * 10 for t in changed)


def test_the_migration_fills_the_maxima_of_an_older_catalog(
        new_archive: Callable[..., Path], synth_small: Path) -> None:
    root = new_archive()
    ingest(root, synth_small)
    want = query(root, "SELECT track_id, artist_popularity, artist_followers FROM tracks "
                       "ORDER BY 1")
    # The catalog as schema version 1 left it: no such columns.
    con = duckdb.connect(str(root / "catalog.duckdb"))
    con.execute("ALTER TABLE tracks DROP COLUMN artist_popularity")
    con.execute("ALTER TABLE tracks DROP COLUMN artist_followers")
    db.set_meta(con, "schema_version.catalog", "1")
    con.close()
    with archive.open_archive(root) as arch:
        assert int(db.get_meta(arch.con, "schema_version.catalog") or 0) >= 2
    assert query(root, "SELECT track_id, artist_popularity, artist_followers FROM tracks "
                       "ORDER BY 1") == want


@pytest.mark.parametrize("rewrite", [False, True])
def test_refresh_repairs_edits_by_hand(new_archive: Callable[..., Path], synth_small: Path,
                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       rewrite: bool) -> None:
    """In place, or (past UPDATE_MAX changed rows) by writing the table anew: the same rows
    in the same order under the same definition, the maxima repaired."""
    if rewrite:
        monkeypatch.setattr(credits, "UPDATE_MAX", 0)
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
        stale = con.execute(STALE).fetchall()[0][0]
        assert stale >= 3
        ddl = "SELECT sql FROM duckdb_tables() WHERE table_name = 'tracks'"
        before = con.execute(ddl).fetchall()
        other = "SELECT * EXCLUDE (artist_popularity, artist_followers) FROM tracks"
        rows = con.execute(other).fetchall()
        assert credits.refresh(con) == stale
        assert con.execute(STALE).fetchall()[0][0] == 0
        assert con.execute(ddl).fetchall() == before
        assert con.execute(other).fetchall() == rows
        assert con.execute("SELECT artist_popularity, artist_followers FROM tracks "
                           "WHERE track_id = ?", [ids[2]]).fetchall() == [(None, None)]
        assert credits.refresh(con) == 0
    finally:
        con.close()
