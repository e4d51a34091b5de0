"""Linking held files to catalog tracks: ISRC, MBID, fingerprint, title + artist + duration."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from audiofix import Catalog, rows, write_audio, write_tags

from soundkeep.audio import fingerprint as fpmod
from soundkeep.audio import link as linkmod
from soundkeep.audio import scan as scanmod
from soundkeep.audio.schema import file_key_sql

Scan = Callable[..., scanmod.ScanReport]
MBID = "5b11f4ce-a62d-471e-81fc-a69a8278c7da"
needs_chromaprint = pytest.mark.skipif(not fpmod.available(),
                                       reason="libchromaprint is not installed")


def links(con: Any) -> dict[str, tuple[Any, ...]]:
    """path -> (track_id, method, confidence) for every scanned path; every file and link
    carries its sha256's key (the plan joins them on it)."""
    for table in ("audio_files", "audio_links"):
        assert rows(con, f"SELECT count(*) FILTER (WHERE file_key = {file_key_sql('sha256')}) "
                         f"= count(*) FROM {table}") == [(True,)]
    return {p: (t, m, c) for p, t, m, c in rows(con, """
        SELECT s.path, l.track_id, l.method, l.confidence
        FROM scan_paths s JOIN audio_links l USING (sha256)""")}


def test_isrc_link_prefers_the_tagged_release(arch: Any, catalog: Catalog, run_scan: Scan,
                                             tmp_path: Path) -> None:
    # One recording (one ISRC) on a compilation and on its own album: the album tag decides.
    catalog.track(1, "Song", isrc="USABC1234567", release="Best Of", listens=900)
    catalog.track(2, "Song", isrc="USABC1234567", release="The Album", listens=10)
    catalog.track(3, "Song", artists=("Band",), duration_ms=4000)  # a title match, not chosen
    f = write_tags(write_audio(tmp_path / "m" / "song.mp3", "mp3", seconds=4.0),
                   title="Song", artist="Band", album="The Album", isrc="us-abc-12-34567")
    rep = run_scan(tmp_path / "m", fingerprint=False)
    assert links(arch.con)[str(f)] == (2, "isrc", 1.0)
    assert rep.links == {"isrc": 1}


def test_mbid_link_uses_musicbrainz_source_keys(arch: Any, catalog: Catalog, run_scan: Scan,
                                               tmp_path: Path) -> None:
    catalog.track(7, "Other", source="beets", source_key=MBID)  # same key, another namespace
    catalog.track(8, "Recording", source="musicbrainz", source_key=MBID)
    f = write_tags(write_audio(tmp_path / "m" / "r.opus", "opus", seconds=2.0),
                   title="Untitled", mbid=MBID)
    run_scan(tmp_path / "m", fingerprint=False)
    assert links(arch.con)[str(f)] == (8, "mbid", 1.0)


def test_title_artist_duration_link_with_confidence(arch: Any, catalog: Catalog, run_scan: Scan,
                                                   tmp_path: Path) -> None:
    catalog.track(10, "Sóng for You!", artists=("The Band", "Guest"), duration_ms=5000,
                  release="LP")
    catalog.track(11, "Song for You", artists=("The Band",), duration_ms=8000)  # 3 s off
    catalog.track(12, "Song for You", artists=("Someone Else",), duration_ms=5000)
    exact = write_tags(write_audio(tmp_path / "m" / "a.flac", "flac", seconds=5.0, seed=1),
                       title="song for you", artist="The Band feat. Guest", album="LP")
    off = write_tags(write_audio(tmp_path / "m" / "b.flac", "flac", seconds=7.0, seed=2),
                     title="Song for you", artist="the band")
    far = write_tags(write_audio(tmp_path / "m" / "c.flac", "flac", seconds=2.0, seed=3),
                     title="Song for you", artist="The Band")
    run_scan(tmp_path / "m", fingerprint=False)
    got = links(arch.con)
    t, m, c = got[str(exact)]
    assert (t, m) == (10, "title_artist_duration") and c == pytest.approx(0.95)
    t, m, c = got[str(off)]  # 2 s from track 10, 1 s from track 11: the nearer wins
    assert (t, m) == (11, "title_artist_duration") and 0.55 < c < 0.95
    assert got[str(far)] == (None, "unlinked", None)  # 3 s from every candidate


def test_ambiguous_files_are_listed_with_candidates(arch: Any, catalog: Catalog, run_scan: Scan,
                                                   tmp_path: Path) -> None:
    catalog.track(20, "Twin", artists=("Duo",), duration_ms=3000, isrc="GBAAA0000001")
    catalog.track(21, "Twin", artists=("Duo",), duration_ms=3000, isrc="GBAAA0000002")
    catalog.track(22, "Solo", artists=("Duo",), duration_ms=3000, isrc="GBAAA0000003")
    catalog.track(23, "Solo", artists=("Duo",), duration_ms=3000, isrc="GBAAA0000003")
    amb = write_tags(write_audio(tmp_path / "m" / "twin.flac", "flac", seconds=3.0, seed=1),
                     title="Twin", artist="Duo")
    same = write_tags(write_audio(tmp_path / "m" / "solo.flac", "flac", seconds=3.0, seed=2),
                      title="Solo", artist="Duo")
    untagged = write_audio(tmp_path / "m" / "none.flac", "flac", seconds=3.0, seed=3)
    run_scan(tmp_path / "m", fingerprint=False)
    got = links(arch.con)
    assert got[str(amb)][:2] == (None, "ambiguous")
    assert got[str(same)][:2] == (22, "title_artist_duration")  # one recording (one ISRC)
    assert got[str(untagged)] == (None, "unlinked", None)
    listed = {r["path"]: r for r in linkmod.unlinked_files(arch.con)}
    assert set(listed) == {str(amb), str(untagged)}
    assert [c["track_id"] for c in listed[str(amb)]["candidates"]] == [20, 21]
    assert listed[str(untagged)]["candidates"] == []
    h = scanmod.holdings(arch.con)
    assert (h["linked"], h["unlinked"], h["ambiguous"]) == (1, 2, 1)


@needs_chromaprint
def test_fingerprint_links_a_retagless_copy_to_the_linked_recording(
        arch: Any, catalog: Catalog, run_scan: Scan, tmp_path: Path) -> None:
    catalog.track(30, "Melody", isrc="QZAAA2400001")
    tagged = write_tags(write_audio(tmp_path / "m" / "a.flac", "flac", seconds=15.0, seed=11),
                        title="Melody", isrc="QZAAA2400001")
    # The same recording, re-encoded, with 1.5 s of silence in front and no tags at all.
    copy = write_audio(tmp_path / "m" / "b.mp3", "mp3", seconds=15.0, seed=11, bitrate=96000,
                       lead_in=1.5)
    other = write_audio(tmp_path / "m" / "c.opus", "opus", seconds=15.0, seed=12)
    rep = run_scan(tmp_path / "m")
    got = links(arch.con)
    assert got[str(tagged)] == (30, "isrc", 1.0)
    t, m, c = got[str(copy)]
    assert (t, m) == (30, "fingerprint") and 0.7 <= c <= 1.0
    assert got[str(other)] == (None, "unlinked", None)
    assert rep.fingerprint_pairs == 1
    h = scanmod.holdings(arch.con)
    assert h["by_link_method"] == {"isrc": 1, "mbid": 0, "fingerprint": 1,
                                   "title_artist_duration": 0, "path": 0}
    assert h["duplicates_by_fingerprint"]["groups"] == 1
    assert h["duplicates_by_fingerprint"]["files"] == 2
    # A copy scanned later (another run) links against the files already linked.
    later = write_audio(tmp_path / "n" / "d.opus", "opus", seconds=15.0, seed=11)
    run_scan(tmp_path / "n")
    assert links(arch.con)[str(later)][:2] == (30, "fingerprint")


@needs_chromaprint
def test_silence_does_not_match_other_silence(arch: Any, catalog: Catalog, run_scan: Scan,
                                             tmp_path: Path) -> None:
    catalog.track(40, "Quiet", isrc="QZAAA2400002")
    write_tags(write_audio(tmp_path / "m" / "a.flac", "flac", kind="silence", seconds=8.0),
               isrc="QZAAA2400002")
    b = write_audio(tmp_path / "m" / "b.flac", "flac", kind="silence", seconds=9.0)
    run_scan(tmp_path / "m")
    assert links(arch.con)[str(b)][:2] == (None, "unlinked")
    assert rows(arch.con, "SELECT count(*) FROM audio_fp_matches") == [(0,)]


def test_unlinked_files_are_retried_when_the_catalog_grows(
        arch: Any, catalog: Catalog, run_scan: Scan, tmp_path: Path) -> None:
    f = write_tags(write_audio(tmp_path / "m" / "a.flac", "flac", seconds=2.0),
                   title="Late", isrc="QZAAA2400003")
    run_scan(tmp_path / "m", fingerprint=False)
    assert links(arch.con)[str(f)][:2] == (None, "unlinked")
    before = rows(arch.con, "SELECT CAST(linked_at AS VARCHAR) FROM audio_links")
    run_scan(tmp_path / "m", fingerprint=False)  # nothing changed: the link row is kept as is
    assert rows(arch.con, "SELECT CAST(linked_at AS VARCHAR) FROM audio_links") == before
    catalog.track(50, "Late", isrc="QZAAA2400003")
    rep = run_scan(tmp_path / "m", fingerprint=False)
    assert rep.read == 0
    assert links(arch.con)[str(f)] == (50, "isrc", 1.0)


def test_real_cc_track_links_by_its_own_tags(arch: Any, catalog: Catalog, run_scan: Scan,
                                            singularity_track: Path) -> None:
    # The singularity-music tracks carry title and artist tags; a catalog row for the track
    # with its published length links by title + artist + duration.
    catalog.track(60, "Apex Aleph", artists=("Maxstack",), duration_ms=120_000)
    run_scan(singularity_track.parent, fingerprint=False)
    (dur,) = rows(arch.con, "SELECT duration_ms FROM audio_files")[0]
    arch.con.execute("UPDATE tracks SET duration_ms = ? WHERE track_id = 60", [dur + 1200])
    arch.con.execute("DELETE FROM audio_links")
    run_scan(singularity_track.parent, fingerprint=False)
    t, m, c = links(arch.con)[str(singularity_track)]
    assert (t, m) == (60, "title_artist_duration") and 0.55 < c < 0.95


def test_path_link_for_rows_imported_from_the_files(arch: Any, catalog: Catalog, run_scan: Scan,
                                                    tmp_path: Path) -> None:
    # Importers that know files (a beets library, ingest --format tags) list them in
    # known_paths with their track.
    a = write_audio(tmp_path / "m" / "untagged.flac", "flac", seconds=2.0, seed=1)
    b = write_tags(write_audio(tmp_path / "m" / "tagged.flac", "flac", seconds=2.0, seed=2),
                   isrc="QZAAA2400070")
    catalog.track(70, "from beets", source="beets")
    catalog.track(71, "from beets too", source="beets")
    catalog.track(72, "by isrc", isrc="QZAAA2400070")
    arch.con.execute("INSERT INTO known_paths VALUES (?, 70, 1), (?, 71, 1)", [str(a), str(b)])
    run_scan(tmp_path / "m", fingerprint=False)
    got = links(arch.con)
    assert got[str(a)] == (70, "path", 1.0)
    assert got[str(b)] == (72, "isrc", 1.0)  # identity first, provenance last
