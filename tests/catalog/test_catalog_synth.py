"""Synthetic catalogs: deterministic, loadable, and shaped like the reference catalog."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from catfix import run_cli

from soundkeep.catalog import identifiers as ids
from soundkeep.catalog.fields import RIGHTS_CC_PATTERN, RIGHTS_FIXED
from soundkeep.catalog.synth import GENRES, write_catalog
from soundkeep.errors import SoundkeepError

N = 200_000
FILES = ("artists.parquet", "releases.parquet", "tracks.parquet")


def test_same_seed_same_catalog(tmp_path: Path) -> None:
    """Same (tracks, seed): the same files, byte for byte; another seed: other content."""
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    sa = write_catalog(a, 5_000, seed=11)
    write_catalog(b, 5_000, seed=11)
    write_catalog(c, 5_000, seed=12)
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
        assert pq.read_table(a / name).equals(pq.read_table(b / name))
        assert not pq.read_table(a / name).equals(pq.read_table(c / name))
    assert sorted(sa.files) == sorted(FILES)
    assert sorted(p.name for p in a.iterdir()) == sorted(FILES)  # no temporary files left


def test_synth_command(tmp_path: Path) -> None:
    """`soundkeep synth --json` reports what it wrote; bad options are one line, exit 2."""
    out = tmp_path / "out"
    res = run_cli("synth", "--tracks", "1000", "--seed", "3", "--out", out, "--json")
    assert res.code == 0, res.err
    summary = res.json()
    assert summary["tracks"] == 1000 and summary["seed"] == 3
    assert summary["source"] == "synth-3-1000"
    assert pq.read_metadata(out / "tracks.parquet").num_rows == 1000
    assert pq.read_metadata(out / "releases.parquet").num_rows == summary["releases"]
    assert pq.read_metadata(out / "artists.parquet").num_rows == summary["artists"]
    bad = run_cli("synth", "--tracks", "0", "--out", out)
    assert bad.code == 2 and "Traceback" not in bad.err
    with pytest.raises(SoundkeepError):
        write_catalog(out, 0)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    """A 200,000-track synthetic catalog, as views in an in-memory DuckDB."""
    out = tmp_path_factory.mktemp("synth200k")
    write_catalog(out, N, seed=2025)
    con = duckdb.connect()
    for name in FILES:
        con.execute(f"CREATE VIEW {name.split('.')[0]} AS "
                    f"SELECT * FROM read_parquet('{out / name}')")
    yield con
    con.close()


def one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple:
    return con.execute(sql).fetchall()[0]


def test_counts_follow_the_reference_ratios(big: duckdb.DuckDBPyConnection) -> None:
    """tracks : releases : artists about 256 : 58.6 : 15.4 (within 15 %)."""
    tracks, releases, artists = one(big, """SELECT (SELECT count(*) FROM tracks),
        (SELECT count(*) FROM releases), (SELECT count(*) FROM artists)""")
    assert tracks == N
    assert releases / tracks == pytest.approx(58.6 / 256, rel=0.15)
    assert artists / tracks == pytest.approx(15.4 / 256, rel=0.15)
    # Every reference resolves, ids are unique.
    assert one(big, """SELECT
        (SELECT count(*) - count(DISTINCT track_id) FROM tracks),
        (SELECT count(*) - count(DISTINCT release_id) FROM releases),
        (SELECT count(*) - count(DISTINCT artist_id) FROM artists),
        (SELECT count(*) FROM tracks WHERE release_id NOT IN (SELECT release_id FROM releases)),
        (SELECT count(*) FROM (SELECT unnest(artist_ids) AS a FROM tracks)
            WHERE a NOT IN (SELECT artist_id FROM artists))""") == (0, 0, 0, 0, 0)


def test_isrcs(big: duckdb.DuckDBPyConnection) -> None:
    """About 77 % of tracks carry a valid ISRC; some are shared by 2 to 20 rows, none by more."""
    share, invalid = one(big, f"""SELECT avg((isrc IS NOT NULL)::INT),
        count(*) FILTER (WHERE isrc IS NOT NULL AND NOT {ids.sql_is_valid_isrc('isrc')})
        FROM tracks""")
    assert share == pytest.approx(0.77, abs=0.02)
    assert invalid == 0
    shared, max_rows, with_2_to_20 = one(big, """
        WITH g AS (SELECT isrc, count(*) AS n FROM tracks WHERE isrc IS NOT NULL GROUP BY 1)
        SELECT count(*) FILTER (WHERE n > 1), max(n), count(DISTINCT n) FILTER (WHERE n > 1)
        FROM g""")
    assert shared > 100
    assert 2 < max_rows <= 20
    assert with_2_to_20 >= 5  # several multiplicities, not only pairs
    sample = [r[0] for r in big.execute(
        "SELECT isrc FROM tracks WHERE isrc IS NOT NULL LIMIT 500").fetchall()]
    assert all(ids.is_valid_isrc(x) for x in sample)


def test_popularity_and_explicit(big: duckdb.DuckDBPyConnection) -> None:
    """About 0.1 % of tracks at popularity >= 50, at least 70 % in the < 1,000-stream range
    (popularity under 12), about 13.5 % explicit, popularity within 0..100."""
    p50, low, explicit, lo, hi = one(big, """SELECT avg((popularity >= 50)::INT),
        avg((popularity < 12)::INT), avg(explicit::INT), min(popularity), max(popularity)
        FROM tracks""")
    assert 0.0005 <= p50 <= 0.002
    assert low >= 0.70
    assert explicit == pytest.approx(0.135, abs=0.01)
    assert lo >= 0 and hi <= 100


def test_durations_peak_at_2_3_and_4_minutes(big: duckdb.DuckDBPyConnection) -> None:
    """Tracks per 10-second window: 2:00, 3:00 and 4:00 stand above the valleys between."""
    dens = dict(big.execute("""SELECT w, count(*) FROM (
        SELECT CASE WHEN duration_ms BETWEEN 115000 AND 125000 THEN 120
                    WHEN duration_ms BETWEEN 145000 AND 155000 THEN 150
                    WHEN duration_ms BETWEEN 175000 AND 185000 THEN 180
                    WHEN duration_ms BETWEEN 205000 AND 215000 THEN 210
                    WHEN duration_ms BETWEEN 235000 AND 245000 THEN 240
                    WHEN duration_ms BETWEEN 265000 AND 275000 THEN 270 END AS w
        FROM tracks) WHERE w IS NOT NULL GROUP BY 1""").fetchall())
    assert dens[120] > 1.1 * dens[150] and dens[180] > 1.1 * dens[150]
    assert dens[180] > 1.1 * dens[210] and dens[240] > 1.1 * dens[210]
    assert dens[240] > 1.1 * dens[270]
    assert one(big, "SELECT min(duration_ms) >= 0, max(duration_ms) <= 3600000 FROM tracks") \
        == (True, True)


def test_releases_artists_genres_rights(big: duckdb.DuckDBPyConnection) -> None:
    """Mostly singles, valid barcodes and dates, multi-artist tracks, 768 genre names, and a
    mix of rights statuses that ingest accepts."""
    assert len(GENRES) == len(set(GENRES)) == 768
    types = dict(big.execute("SELECT release_type, count(*) FROM releases GROUP BY 1").fetchall())
    assert max(types, key=lambda t: types[t]) == "single"
    assert types["single"] / sum(types.values()) > 0.5
    assert one(big, f"""SELECT count(*) FILTER (WHERE NOT {ids.sql_is_valid_upc('upc')}),
        count(*) FILTER (WHERE NOT regexp_full_match(release_date,
            '[0-9]{{4}}(-[0-9]{{2}}(-[0-9]{{2}})?)?'))
        FROM releases""") == (0, 0)
    multi = one(big, "SELECT avg((len(artist_ids) > 1)::INT) FROM tracks")[0]
    assert 0.15 < multi < 0.5
    genres = {r[0] for r in big.execute(
        "SELECT DISTINCT unnest(genres) FROM artists").fetchall()}
    assert genres <= set(GENRES)
    assert len(genres) > 700
    rights = {r[0] for r in big.execute("SELECT DISTINCT rights_status FROM tracks").fetchall()}
    assert len(rights) >= 6
    assert all(r in RIGHTS_FIXED or re.fullmatch(RIGHTS_CC_PATTERN, r) for r in rights)
    assert {"unknown", "public_domain", "all_rights_reserved"} <= rights


def test_tempo_and_keys(big: duckdb.DuckDBPyConnection) -> None:
    """Tempo roughly normal around 120 BPM; C major the most common key, D#/Eb minor the least."""
    mean, median = one(big, "SELECT avg(tempo), median(tempo) FROM tracks")
    assert mean == pytest.approx(120, abs=3) and median == pytest.approx(120, abs=3)
    keys = big.execute("""SELECT key, mode, count(*) AS n FROM tracks GROUP BY 1, 2
        ORDER BY n DESC""").fetchall()
    assert keys[0][:2] == (0, 1)
    assert keys[-1][:2] == (3, 0)
