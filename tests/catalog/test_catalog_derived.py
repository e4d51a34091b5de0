"""Columns of tracks derived from other rows (catalog.derived): made by refresh, in place or by
writing the table anew, recorded with a digest of what they were made from."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from catfix import query, run_cli

from soundkeep import archive, db
from soundkeep.catalog import derived

# Tracks whose derived values differ from those of their artists and release.
STALE = f"""
    SELECT count(*) FROM tracks t
    LEFT JOIN ({derived.MAXIMA_SQL}) m USING (track_id)
    LEFT JOIN releases r ON r.release_id = t.release_id
    LEFT JOIN (SELECT isrc, count(*) > 1 AS shared FROM tracks GROUP BY isrc) s
           ON s.isrc = t.isrc
    WHERE t.artist_popularity IS DISTINCT FROM m.pop
       OR t.artist_followers IS DISTINCT FROM m.fol
       OR t.release_popularity IS DISTINCT FROM r.popularity
       OR t.isrc_shared IS DISTINCT FROM coalesce(s.shared, false)"""
KNOWN = ("SELECT count(artist_popularity), count(artist_followers), count(release_popularity), "
         "count(isrc_shared) FROM tracks")
SHARED = "SELECT count(*) FILTER (isrc_shared), count(*) FILTER (NOT isrc_shared) FROM tracks"


def ingest(root: Path, *paths: Path) -> None:
    res = run_cli("ingest", *paths, "-a", root, "--json")
    assert res.code == 0, res.err


def refresh_json(root: Path) -> dict[str, int]:
    res = run_cli("refresh", "-a", root, "--json")
    assert res.code == 0, res.err
    return dict(res.json())


def test_refresh_makes_the_columns_ingest_leaves_empty(new_archive: Callable[..., Path],
                                                       synth_small: Path) -> None:
    root = new_archive()
    ingest(root, synth_small)
    # Ingest does not make them (it would cost it a quarter of its time).
    assert query(root, KNOWN) == [(0, 0, 0, 0)]
    stale = query(root, STALE)[0][0]
    assert stale > 1000
    assert refresh_json(root) == {"tracks_changed": stale}
    assert query(root, STALE) == [(0,)]
    n_pop, n_fol, n_rel, n_isrc = query(root, KNOWN)[0]
    assert n_pop > 1000 and n_fol > 1000 and n_rel > 1000
    # Every track says whether its ISRC is shared; the catalog has both kinds.
    shared, alone = query(root, SHARED)[0]
    assert n_isrc == shared + alone and shared > 10 and alone > 1000
    # What they were made from is recorded; refreshing again changes nothing.
    with archive.open_archive(root) as arch:
        made = db.get_meta(arch.con, derived.META_KEY)
        assert made == derived.digest(db.digests(arch.con, derived.SOURCES))
        assert derived.is_fresh(arch.con, db.digests(arch.con, derived.SOURCES))
    assert refresh_json(root) == {"tracks_changed": 0}


def test_the_migration_adds_the_columns_to_an_older_catalog(
        new_archive: Callable[..., Path], synth_small: Path) -> None:
    root = new_archive()
    ingest(root, synth_small)
    con = duckdb.connect(str(root / "catalog.duckdb"))
    for col in derived.COLUMNS:
        con.execute(f"ALTER TABLE tracks DROP COLUMN {col}")
    db.set_meta(con, "schema_version.catalog", "1")
    con.close()
    with archive.open_archive(root) as arch:
        assert int(db.get_meta(arch.con, "schema_version.catalog") or 0) >= 3
    assert query(root, KNOWN) == [(0, 0, 0, 0)]
    assert refresh_json(root)["tracks_changed"] > 1000
    assert query(root, STALE) == [(0,)]


@pytest.mark.parametrize("rewrite", [False, True])
def test_refresh_repairs_edits_by_hand(new_archive: Callable[..., Path], synth_small: Path,
                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       rewrite: bool) -> None:
    """In place, or (past UPDATE_MAX changed rows) by writing the table anew: the same rows
    in the same order under the same definition, the derived values repaired."""
    if rewrite:
        monkeypatch.setattr(derived, "UPDATE_MAX", 0)
    root = new_archive()
    ingest(root, synth_small)
    refresh_json(root)
    copy = tmp_path / "copy.duckdb"
    shutil.copy(root / "catalog.duckdb", copy)
    con = duckdb.connect(str(copy))
    try:
        ids = [r[0] for r in con.execute(
            "SELECT track_id FROM tracks WHERE artist_popularity IS NOT NULL "
            "AND release_popularity IS NOT NULL ORDER BY track_id LIMIT 3").fetchall()]
        con.execute("UPDATE tracks SET artist_popularity = artist_popularity + 1 "
                    "WHERE track_id = ?", [ids[0]])
        con.execute("UPDATE artists SET followers = 7 WHERE artist_id IN "
                    "(SELECT artist_id FROM track_artists WHERE track_id = ?)", [ids[1]])
        con.execute("DELETE FROM track_artists WHERE track_id = ?", [ids[2]])
        con.execute("UPDATE releases SET popularity = 1 WHERE release_id IN "
                    "(SELECT release_id FROM tracks WHERE track_id = ?)", [ids[1]])
        assert not derived.is_fresh(con, db.digests(con, derived.SOURCES))
        stale = con.execute(STALE).fetchall()[0][0]
        assert stale >= 3
        ddl = "SELECT sql FROM duckdb_tables() WHERE table_name = 'tracks'"
        definition = con.execute(ddl).fetchall()
        other = ("SELECT * EXCLUDE (artist_popularity, artist_followers, release_popularity) "
                 "FROM tracks")
        rows = con.execute(other).fetchall()
        assert derived.refresh(con) == stale
        assert con.execute(STALE).fetchall()[0][0] == 0
        assert con.execute(ddl).fetchall() == definition
        assert con.execute(other).fetchall() == rows
        assert con.execute("SELECT artist_popularity, artist_followers FROM tracks "
                           "WHERE track_id = ?", [ids[2]]).fetchall() == [(None, None)]
        assert derived.is_fresh(con, db.digests(con, derived.SOURCES))
        assert derived.refresh(con) == 0
    finally:
        con.close()
