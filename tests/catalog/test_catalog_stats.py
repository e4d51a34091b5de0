"""`soundkeep stats`: exact figures on small hand-made catalogs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from catfix import PLAIN_HEADER, run_cli, write_csv

KEYS = ("tracks", "releases", "artists", "isrcs_unique", "isrcs_shared", "quarantined")


def stats(root: Path) -> dict:
    res = run_cli("stats", "-a", root, "--json")
    assert res.code == 0, res.err
    return res.json()


def test_three_rows_share_one_isrc(new_archive: Callable[..., Path], data_dir: Path) -> None:
    """Three rows with one ISRC (written three ways) are one shared ISRC of 3 rows."""
    root = new_archive()
    src = write_csv(data_dir / "plain.csv", PLAIN_HEADER, [
        ["One", "Ann", "LP", "USRC17607839", 1000, 1],
        ["One (live)", "Ann", "Live", "us-rc1-76-07839", 1000, 1],
        ["One (remaster)", "Ann", "Best of", "USRC1 7607839", 1000, 1],
        ["Two", "Bo", "LP", "GBAYE0000351", 1000, 1],
        ["Three", "Bo", "LP", "", 1000, 1],
    ])
    assert run_cli("ingest", src, "-a", root, "--json").code == 0
    s = stats(root)
    assert {k: s[k] for k in KEYS} == {"tracks": 5, "releases": 4, "artists": 2,
                                       "isrcs_unique": 2, "isrcs_shared": 1, "quarantined": 0}
    assert s["isrc_max_rows"] == 3
    assert s["tracks_with_isrc"] == 4
    assert s["tracks_sharing_isrc"] == 3


def test_stats_of_a_full_small_catalog(new_archive: Callable[..., Path], data_dir: Path) -> None:
    """Artists, releases and tracks files with ids: every figure of `stats --json`."""
    root = new_archive()
    write_csv(data_dir / "artists.csv", ["id", "name", "followers", "popularity", "genres"], [
        ["a1", "Ann", 100, 50, "Pop; Rock"],
        ["a2", "Bo", 10, 5, "rock"],
        ["a3", "Cy", 0, 0, ""],
        ["a4", "Dee", -1, 0, ""],  # quarantined: negative followers
    ])
    write_csv(data_dir / "releases.csv", ["id", "title", "artist_ids", "release_date",
                                          "album_type"], [
        ["r1", "One", "a1", "2001-02-03", "album"],
        ["r2", "Two", "a2", "1999", "single"],
        ["r3", "Three", "a1;a3", "2001", "EP"],
    ])
    write_csv(data_dir / "tracks.csv", ["id", "title", "release_id", "artist_ids", "isrc",
                                        "popularity", "explicit", "rights_status"], [
        ["t1", "A", "r1", "a1", "USRC17607839", 0, "true", "public_domain"],
        ["t2", "B", "r1", "a1", "USRC17607839", 5, "false", "unknown"],
        ["t3", "C", "r2", "a2", "us-rc1-76-07839", 12, "false", "unknown"],
        ["t4", "D", "r2", "a2", "GBAYE0000351", 50, "true", "CC-BY-4.0"],
        ["t5", "E", "r3", "a1;a3", "GBAYE0000351", 99, "false", "all_rights_reserved"],
        ["t6", "F", "r3", "a3", "QZ7A01900001", 100, "false", "unknown"],
        ["t7", "G", "r3", "a3", "", "", "", ""],
        ["t8", "H", "r1", "a1", "", 10, "", ""],
        ["t9", "I", "r1", "a1", "BAD", 1, "", ""],  # quarantined: invalid ISRC
    ])
    mapping = data_dir.parent / "m.toml"
    mapping.write_text('source = "hand"\n')
    res = run_cli("ingest", data_dir, "-a", root, "--mapping", mapping, "--json")
    assert res.code == 0, res.err
    s = stats(root)
    s.pop("catalog_bytes")
    assert s == {
        "tracks": 8, "releases": 3, "artists": 3, "quarantined": 2,
        "distributable": 2, "explicit": 2, "track_artists": 9, "release_artists": 4,
        "genres": 2, "sources": 3,
        "isrcs_unique": 3, "isrcs_shared": 2, "isrc_max_rows": 3,
        "tracks_with_isrc": 6, "tracks_sharing_isrc": 5,
        "popularity_histogram": {"0-9": 2, "10-19": 2, "50-59": 1, "90-99": 1, "100-100": 1,
                                 "unknown": 1},
        "top_genres": [{"genre": "rock", "artists": 2}, {"genre": "pop", "artists": 1}],
        "tracks_per_year": {"1999": 2, "2001": 6},
        "rights": {"unknown": 5, "public_domain": 1, "CC-BY-4.0": 1, "all_rights_reserved": 1},
        "release_types": {"album": 1, "single": 1, "ep": 1},
        "quarantined_by_stage": {"ingest": 2},
    }
    # The table view shows the same counts.
    text = run_cli("stats", "-a", root)
    assert text.code == 0
    for label, value in (("tracks", 8), ("isrcs shared", 2), ("isrc max rows", 3),
                         ("quarantined", 2)):
        assert any(label in line and line.split()[-2] == str(value) for line in
                   text.out.splitlines()), (label, text.out)


def test_stats_of_an_empty_archive(new_archive: Callable[..., Path]) -> None:
    """A new archive: every count is 0 and the lists are empty."""
    s = stats(new_archive())
    assert all(s[k] == 0 for k in (*KEYS, "isrc_max_rows", "distributable", "explicit"))
    assert s["popularity_histogram"] == {} and s["top_genres"] == []
    assert s["catalog_bytes"] > 0
