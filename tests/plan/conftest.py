"""Fixtures for the plan tests: catalogs generated in numpy and inserted with DuckDB SQL."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from soundkeep import archive, config, db
from soundkeep.audio.schema import file_key_sql

# Popularity by rank, shaped like the reference catalog: log10(share of tracks above) ->
# popularity. ~0.1 % at >= 50, the top 10,000 per 256 M at >= 70, about 68 % at 0.
POP_X = np.array([-9.0, -7.93, -4.41, -3.0, -2.0, -1.0, -0.52, -0.5, 0.0])
POP_Y = np.array([100.0, 98.0, 70.0, 50.0, 30.0, 12.0, 1.0, 0.0, 0.0])
RIGHTS = np.array(["all_rights_reserved", "CC-BY-4.0", "public_domain", "unknown"])


def catalog_tables(n: int, seed: int = 0, *, isrc_dup_share: float = 0.05,
                   listens_share: float = 0.0, zero_duration_share: float = 0.001,
                   no_isrc_share: float = 0.0,
                   rights_p: tuple[float, ...] = (0.5, 0.3, 0.1, 0.1),
                   ) -> dict[str, pa.Table]:
    """Arrow tables for tracks, artists, track_artists, releases, artist_genres (n tracks)."""
    rng = np.random.default_rng(seed)
    n_art = max(2, n // 16)
    n_rel = max(1, n // 3)
    q = np.maximum(rng.random(n), 1e-12)
    pop = np.floor(np.interp(np.log10(q), POP_X, POP_Y)).astype(np.int16)
    dur = np.clip(rng.normal(200_000, 50_000, n), 20_000, 900_000).astype(np.int32)
    dur[rng.random(n) < zero_duration_share] = 0
    isrc_num = np.arange(n)
    dup = rng.random(n) < isrc_dup_share
    isrc_num[dup] = rng.integers(0, n, dup.sum())
    isrc = pa.array(np.char.add("QZ", np.char.zfill(isrc_num.astype(str), 10)),
                    mask=rng.random(n) < no_isrc_share)
    has_listens = rng.random(n) < listens_share
    listens = pa.array(np.rint(10 ** (pop / 12.0 + rng.random(n))).astype(np.int64),
                       mask=~has_listens)
    rights = RIGHTS[rng.choice(len(RIGHTS), n, p=np.array(rights_p) / sum(rights_p))]
    track_ids = np.arange(1, n + 1, dtype=np.int64) * 7 + 1000
    tracks = pa.table({
        "track_id": track_ids,
        "title": pa.array(np.char.add("t", track_ids.astype(str))),
        "release_id": rng.integers(0, n_rel, n).astype(np.int64),
        "duration_ms": dur,
        "isrc": isrc,
        "popularity": pop,
        "listens": listens,
        "rights_status": pa.array(rights),
    })
    # Famous artists (low ids) are on the popular tracks.
    art = np.minimum((n_art * rng.random(n) ** 2).astype(np.int64), n_art - 1)
    extra = rng.random(n) < 0.3
    ta = pa.table({
        "track_id": np.concatenate([track_ids, track_ids[extra]]),
        "artist_id": np.concatenate([art, rng.integers(0, n_art, int(extra.sum()))]),
        "position": np.concatenate([np.zeros(n, np.int16), np.ones(int(extra.sum()), np.int16)]),
    })
    a_pop = np.clip(100 - 12 * np.log2(np.arange(n_art) + 1), 0, 100).astype(np.int16)
    artists = pa.table({
        "artist_id": np.arange(n_art, dtype=np.int64),
        "name": pa.array(np.char.add("a", np.arange(n_art).astype(str))),
        "followers": (10 ** (a_pop / 14.0 + rng.normal(1.0, 0.6, n_art))).astype(np.int64),
        "popularity": a_pop,
    })
    releases = pa.table({
        "release_id": np.arange(n_rel, dtype=np.int64),
        "title": pa.array(np.char.add("r", np.arange(n_rel).astype(str))),
        "popularity": rng.integers(0, 40, n_rel).astype(np.int16),
    })
    genres = np.array(["pop", "rock", "jazz", "folk", "techno"])
    ag = pa.table({"artist_id": np.arange(n_art, dtype=np.int64),
                   "genre": pa.array(genres[np.arange(n_art) % len(genres)])})
    return {"tracks": tracks, "track_artists": ta, "artists": artists, "releases": releases,
            "artist_genres": ag}


def insert_catalog(con: duckdb.DuckDBPyConnection, tables: dict[str, pa.Table],
                   distributable: tuple[str, ...] = ("CC-BY-4.0", "public_domain")) -> None:
    """Insert generated tables into the catalog; distributable from the given rights."""
    for name, table in tables.items():
        con.register("_gen", table)
        if name == "tracks":
            allowed = ", ".join(f"'{r}'" for r in distributable) or "NULL"
            con.execute(f"INSERT INTO tracks BY NAME SELECT *, "
                        f"coalesce(rights_status IN ({allowed}), false) AS distributable "
                        f"FROM _gen")
        else:
            con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM _gen")
        con.unregister("_gen")


def fake_sha256(track_id: int) -> str:
    """The made-up sha256 of a track's held file (the sha256 of its id)."""
    return hashlib.sha256(str(track_id).encode()).hexdigest()


def fake_key(track_id: int) -> int:
    """The plan's key of a track's made-up file (its sha256's first 64 bits)."""
    return int(fake_sha256(track_id)[:16], 16)


def insert_holdings(con: duckdb.DuckDBPyConnection, track_ids: np.ndarray, sizes: np.ndarray,
                    durations: np.ndarray | None = None, bitrate: int = 160_000) -> None:
    """Hold one file per given track (sha256 made up from the track id), linked by ISRC."""
    sha = pa.array([fake_sha256(int(t)) for t in track_ids])
    files = pa.table({"sha256": sha, "size": pa.array(sizes, pa.int64()),
                      "store_path": sha, "storage_mode": pa.array(["copy"] * len(sha)),
                      "bitrate": pa.array(np.full(len(sha), bitrate, np.int32)),
                      "duration_ms": pa.array(durations, pa.int32()) if durations is not None
                      else pa.nulls(len(sha), pa.int32())})
    links = pa.table({"sha256": sha, "track_id": pa.array(track_ids, pa.int64()),
                      "method": pa.array(["isrc"] * len(sha))})
    for name, table in (("audio_files", files), ("audio_links", links)):
        con.register("_gen", table)
        con.execute(f"INSERT INTO {name} BY NAME SELECT *, {file_key_sql('sha256')} AS file_key "
                    "FROM _gen")
        con.unregister("_gen")


def memory_catalog() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with every stage's tables."""
    con = duckdb.connect(":memory:")
    db.migrate(con)
    return con


def write_settings(root: Path, text: str) -> None:
    """Replace an archive's soundkeep.toml with these settings (the rest keep defaults)."""
    (root / config.CONFIG_NAME).write_text(text, encoding="utf-8")


@pytest.fixture
def make_archive(tmp_path: Path) -> Iterator[Callable[..., archive.Archive]]:
    """Factory: an archive in tmp_path with a generated catalog of n tracks."""
    made: list[archive.Archive] = []

    def make(n: int = 2000, seed: int = 0, settings: str = "", name: str = "arch",
             **kw: Any) -> archive.Archive:
        root = tmp_path / name
        arch = archive.init(root)
        arch.close()
        if settings:
            write_settings(root, settings)
        arch = archive.open_archive(root)
        insert_catalog(arch.con, catalog_tables(n, seed, **kw))
        made.append(arch)
        return arch

    yield make
    for arch in made:
        arch.close()


def settings(overrides: dict[str, Any] | None = None) -> config.Settings:
    """Default settings with some values replaced, by dotted name ('plan.budget': '1TB')."""
    s = config.load(None)
    for dotted, value in (overrides or {}).items():
        node = s.data
        parts = dotted.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return s


def plan_tables(tables: dict[str, pa.Table], overrides: dict[str, Any] | None = None,
                holdings: tuple[np.ndarray, np.ndarray] | None = None) -> Any:
    """Plan generated tables in an in-memory catalog; returns (Computed, PlanSettings)."""
    from soundkeep.plan.config import load_plan_settings
    from soundkeep.plan.planner import compute
    from soundkeep.plan.priority import load_inputs

    con = memory_catalog()
    insert_catalog(con, tables)
    if holdings is not None:
        insert_holdings(con, *holdings)
    ps = load_plan_settings(settings(overrides))
    comp = compute(load_inputs(con, ps), ps, con)
    con.close()
    return comp, ps
