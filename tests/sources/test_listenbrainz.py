"""ListenBrainz-style listen counts.

Lines follow the shape of ListenBrainz recording statistics: a `recording_mbid` (or an `isrc`)
with a `listen_count`, as in its JSON stats and CSV exports.
"""

from __future__ import annotations

import json
from pathlib import Path

from soundkeep.archive import Archive
from soundkeep.catalog.ingest import ingest_paths
from soundkeep.sources.listenbrainz import ingest_listens

MBID = "0b382a13-32f0-4743-9248-ba5536a6115e"


def _catalog(arch: Archive, tmp_path: Path) -> None:
    csv = tmp_path / "cat.csv"
    csv.write_text("id,title,artist,isrc\n"
                   f"{MBID},One,A,\n"
                   "x2,Two,B,GBAYE0601498\n"
                   "x3,Two (remaster),B,GBAYE0601498\n"
                   "x4,Three,C,\n")
    res = ingest_paths(arch, [csv])
    assert res[0].rows_accepted == 4


def test_listens_by_mbid_and_isrc_with_unmatched_reported(arch: Archive,
                                                           tmp_path: Path) -> None:
    _catalog(arch, tmp_path)
    lines = [{"recording_mbid": MBID, "listen_count": 10},
             {"recording_mbid": MBID.upper(), "listen_count": 5},  # same recording: adds up
             {"isrc": "gb-aye-06-01498", "listen_count": 7},
             {"recording_mbid": "6b9e7ba0-7c2b-4b1c-9a0d-0d7a4b2a9a11", "listen_count": 3},
             {"isrc": "GBAYE0601498", "listen_count": "many"},
             {"listen_count": 1}]
    f = tmp_path / "listens.jsonl"
    f.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    [res] = ingest_listens(arch, [f])
    assert (res.rows_read, res.rows_accepted, res.rows_quarantined) == (6, 3, 3)
    got = dict(arch.con.execute("SELECT title, listens FROM tracks").fetchall())
    assert got == {"One": 15, "Two": 7, "Two (remaster)": 7, "Three": None}
    reasons = sorted(r[0] for r in arch.con.execute(
        "SELECT reason FROM quarantine WHERE stage = 'listens'").fetchall())
    assert reasons == ["listen count is not a whole number >= 0",
                       "no catalog track with this recording MBID or ISRC",
                       "no recording_mbid or isrc"]


def test_listens_csv_and_idempotent(arch: Archive, tmp_path: Path) -> None:
    _catalog(arch, tmp_path)
    f = tmp_path / "listens.csv"
    f.write_text(f"recording_mbid,listen_count\n{MBID},42\n")
    ingest_listens(arch, [f])
    again = ingest_listens(arch, [f])
    assert again[0].skipped
    assert arch.con.execute("SELECT listens FROM tracks WHERE title = 'One'").fetchall() == [(42,)]
