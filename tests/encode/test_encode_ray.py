"""The Ray executor (a local instance with 2 CPUs) gives the same outputs as the local pool."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from encfix import SONIC_PI, Track, run_cli, store_listing

from soundkeep import archive

pytest.importorskip("ray")


@pytest.mark.ray
def test_ray_and_local_pool_give_the_same_archive(
        make_archive: Callable[..., archive.Archive], mixed_tracks: list[Track]) -> None:
    tracks = [t for t in mixed_tracks if t.track_id in (1, 4, 5, 8)]
    tracks.append(Track(9, "Glass", "reencode", SONIC_PI / "ambi_glass_hum.flac"))
    roots = []
    for name in ("ray", "local"):
        arch = make_archive(tracks, name=name)
        roots.append(arch.root)
        arch.close()
    on_ray = json.loads(run_cli(["encode", "-a", str(roots[0]), "--ray", "auto",
                                 "--workers", "2", "--json"]).stdout)
    local = json.loads(run_cli(["encode", "-a", str(roots[1]), "--workers", "2",
                                "--json"]).stdout)
    assert on_ray["executor"] == "ray:auto" and on_ray["workers"] == 2
    for key in ("encoded", "kept_original", "failed", "bytes_in", "bytes_out", "failures"):
        assert on_ray[key] == local[key]
    assert (on_ray["encoded"], on_ray["kept_original"], on_ray["failed"]) == (3, 1, 1)
    assert store_listing(roots[0]) == store_listing(roots[1])
    journals = []
    for root in roots:
        with archive.open_archive(root) as a:
            journals.append(a.con.execute(
                "SELECT track_id, status, reason, output_sha256, patch_sha256 "
                "FROM encode_journal ORDER BY track_id").fetchall())
    assert journals[0] == journals[1]
