"""Plans end to end: statuses, tiers, rights, phases, holdings, duplicates, determinism."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from conftest import (
    catalog_tables,
    fake_key,
    fake_sha256,
    insert_catalog,
    memory_catalog,
    plan_tables,
    settings,
)
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from soundkeep.plan import planner
from soundkeep.plan.config import load_plan_settings
from soundkeep.plan.planner import make_plan

REF_BYTES_PER_TRACK = 300e12 / 256_039_007


def _names(comp: planner.Computed, ps) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    tiers = np.array([t.name for t in ps.tiers])[comp.tier]
    status = np.array(planner.statuses(ps))[comp.status]
    return tiers, status


def test_reference_shape_hits_original_middle_reencode_tail_metadata() -> None:
    n = 40_000
    comp, ps = plan_tables(catalog_tables(n, 3),
                           {"plan.budget": int(REF_BYTES_PER_TRACK * n)})
    tiers, _ = _names(comp, ps)
    pop = comp.inputs.popularity
    s = comp.summary
    assert s["bytes_planned"] <= ps.budget_bytes
    assert s["bytes_planned"] > 0.99 * ps.budget_bytes  # the budget binds
    for name in ("planned_original", "planned_reencode", "dark", "metadata_only",
                 "skipped_duplicate_isrc", "skipped_low_priority", "error_zero_duration"):
        assert s["counts_by_status"].get(name, 0) > 0, name
    eligible = planner.eligible_mask(comp.status, ps)
    med = {t: np.median(comp.listens[eligible & (tiers == t)])
           for t in ("original", "reencode", "metadata_only")}
    assert med["original"] > med["reencode"] > med["metadata_only"]
    assert np.all(tiers[pop >= 30] == "original")
    assert s["listens_kept_share"] > 0.99


@st.composite
def small_catalogs(draw: st.DrawFn) -> dict:
    n = draw(st.integers(1, 40))
    seed = draw(st.integers(0, 10_000))
    rights = draw(st.lists(st.floats(0.0, 1.0), min_size=4, max_size=4).filter(
        lambda p: sum(p) > 0))
    return {"n": n, "seed": seed, "rights": tuple(rights),
            "held": draw(st.floats(0.0, 1.0)),
            "budget": draw(st.one_of(st.just("unlimited"), st.integers(0, n * 8_000_000))),
            "bundle": draw(st.integers(1_000_000, 50_000_000)),
            "dedupe": draw(st.sampled_from([-1, 0, 100]))}


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_catalogs())
def test_rights_never_leak_into_distributable_phases(case: dict) -> None:
    tables = catalog_tables(case["n"], case["seed"], rights_p=case["rights"],
                            isrc_dup_share=0.3, zero_duration_share=0.1)
    rng = np.random.default_rng(case["seed"])
    ids = tables["tracks"].column("track_id").to_numpy()
    held_ids = ids[rng.random(len(ids)) < case["held"]]
    holdings = (held_ids, rng.integers(500_000, 9_000_000, len(held_ids)))
    comp, ps = plan_tables(tables, {"plan.budget": case["budget"],
                                    "pack.bundle_size": case["bundle"],
                                    "plan.isrc_dedupe_max_popularity": case["dedupe"]},
                           holdings if len(held_ids) else None)
    tiers, status = _names(comp, ps)
    dist = comp.inputs.distributable
    phased = comp.phase > 0
    # Only distributable tracks with audio (held, when anything is held) enter a phase.
    assert np.all(dist[phased])
    assert np.all(tiers[phased] != "metadata_only")
    assert not np.any(phased & ~dist)
    assert np.all(~dist[status == "dark"])
    assert not np.any(np.isin(status[~dist], ["planned_original", "planned_reencode"]))
    # Every distributable kept track with its audio available is in a phase.
    avail = (comp.inputs.held_bytes > 0) | (not comp.inputs.holdings)
    assert np.all(phased[dist & (tiers != "metadata_only") & avail])
    # Phases follow rank and stay near the bundle size.
    order = np.argsort(comp.rank)
    ph = comp.phase[order][phased[order]]
    assert np.all(np.diff(ph) >= 0)
    if phased.any():
        biggest = int(comp.est_bytes[phased].max())
        sizes = np.bincount(comp.phase[phased], weights=comp.est_bytes[phased])[1:]
        assert np.all(sizes <= ps.bundle_bytes + biggest)
        assert np.all(sizes > 0)
    if ps.budget_bytes is not None:
        assert int(comp.est_bytes.sum()) <= ps.budget_bytes


def test_holdings_give_real_sizes_and_missing_audio() -> None:
    tables = catalog_tables(3000, 5, zero_duration_share=0.02)
    ids = tables["tracks"].column("track_id").to_numpy()
    dur = tables["tracks"].column("duration_ms").to_numpy()
    held = ids[::3]
    sizes = np.full(len(held), 7_777_777)
    comp, ps = plan_tables(tables, {"plan.budget": "unlimited"}, (held, sizes))
    tiers, status = _names(comp, ps)
    is_held = np.isin(comp.inputs.track_id, held)
    # Held files cost their real size as originals; unheld kept tracks are missing audio.
    assert np.all(comp.est_bytes[is_held & (tiers == "original")] == 7_777_777)
    # The plan records which file it means for each held track, by its sha256's first 64 bits.
    key = comp.inputs.file_key.to_pylist()
    assert all(key[i] == fake_key(int(t))
               for i, t in enumerate(comp.inputs.track_id) if is_held[i])
    assert max(k for k in key if k is not None) >= 1 << 63  # the whole unsigned range
    assert all(key[i] is None for i in np.flatnonzero(~is_held))
    kept = tiers != "metadata_only"
    assert np.all(np.isin(status[kept & ~is_held], ["missing_audio"]))
    assert "note" not in comp.summary
    # A held track is usable even when the catalog has no duration for it.
    zero_held = np.isin(comp.inputs.track_id, held[dur[::3][: len(held)] == 0])
    assert not np.any(status[zero_held] == "error_zero_duration")
    # Without any holdings, nothing is missing_audio and the summary says why.
    comp2, ps2 = plan_tables(tables, {"plan.budget": "unlimited"})
    _, status2 = _names(comp2, ps2)
    assert "missing_audio" not in set(status2)
    assert "holds no audio" in comp2.summary["note"]


def test_one_copy_per_isrc_in_the_tail() -> None:
    tables = catalog_tables(5000, 9, isrc_dup_share=0.2)
    comp, ps = plan_tables(tables, {"plan.budget": "unlimited"})
    _, status = _names(comp, ps)
    dup = status == "skipped_duplicate_isrc"
    assert dup.any()
    assert np.all(comp.inputs.popularity[dup] == 0)
    # The copy that keeps the audio ranks higher and is not itself a duplicate.
    row_of = {int(t): i for i, t in enumerate(comp.inputs.track_id)}
    for i in np.flatnonzero(dup)[:200]:
        rep = row_of[int(comp.duplicate_of[i])]
        assert comp.rank[rep] < comp.rank[i]
        assert status[rep] != "skipped_duplicate_isrc"
    # Rows without an ISRC are never duplicates of each other.
    no_isrc = catalog_tables(3000, 9, isrc_dup_share=0.0, no_isrc_share=0.5)
    comp3, _ = plan_tables(no_isrc, {"plan.budget": "unlimited"})
    assert "skipped_duplicate_isrc" not in comp3.summary["counts_by_status"]
    off, _ = plan_tables(tables, {"plan.budget": "unlimited",
                                       "plan.isrc_dedupe_max_popularity": -1})
    assert "skipped_duplicate_isrc" not in off.summary["counts_by_status"]


def test_budget_extremes() -> None:
    tables = catalog_tables(2000, 2)
    comp, ps = plan_tables(tables, {"plan.budget": "unlimited"})
    tiers, _ = _names(comp, ps)
    eligible = planner.eligible_mask(comp.status, ps)
    assert np.all(tiers[eligible] == "original")
    comp0, _ = plan_tables(tables, {"plan.budget": 0})
    assert comp0.summary["tracks_kept"] == 0 and comp0.summary["bytes_planned"] == 0


def _plan_rows(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute("SELECT * EXCLUDE (plan_id) FROM current_plan ORDER BY track_id"
                       ).fetchall()


def test_plans_are_reproducible_and_idempotent() -> None:
    tables = catalog_tables(4000, 11)
    ps = load_plan_settings(settings({"plan.budget": "5GB"}))
    con_a = memory_catalog()
    insert_catalog(con_a, tables)
    # The same catalog inserted in another row order.
    perm = np.random.default_rng(0).permutation(tables["tracks"].num_rows)
    shuffled = dict(tables, tracks=tables["tracks"].take(pa.array(perm)))
    con_b = memory_catalog()
    insert_catalog(con_b, shuffled)
    ra, rb = make_plan(con_a, ps), make_plan(con_b, ps)
    assert _plan_rows(con_a) == _plan_rows(con_b)
    assert ra.summary == rb.summary
    # Planning again with nothing changed reuses the stored plan.
    again = make_plan(con_a, ps)
    assert again.reused and again.plan_id == ra.plan_id
    assert con_a.execute("SELECT count(*) FROM plans").fetchall()[0][0] == 1
    # Settings are stored with the plan.
    stored = con_a.execute("SELECT settings_json FROM plans").fetchall()[0][0]
    assert json.loads(stored)["budget_bytes"] == 5 * 10**9


def test_old_plans_are_pruned_and_a_failed_write_leaves_no_trace(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    con = memory_catalog()
    insert_catalog(con, catalog_tables(1000, 4))
    for i, budget in enumerate(["1GB", "2GB", "3GB"]):
        ps = load_plan_settings(settings({"plan.budget": budget, "plan.keep_plans": 2}))
        assert make_plan(con, ps).plan_id == i + 1
    assert [r[0] for r in con.execute("SELECT plan_id FROM plans ORDER BY 1").fetchall()] == [2, 3]
    assert con.execute("SELECT count(DISTINCT plan_id) FROM plan_tracks").fetchall()[0][0] == 2

    def broken(*args, **kw):  # type: ignore[no-untyped-def]
        table = real(*args, **kw)
        return table.set_column(table.schema.get_field_index("tier_code"), "tier_code",
                                pa.nulls(table.num_rows, pa.uint8()))

    real = planner._plan_table
    monkeypatch.setattr(planner, "_plan_table", broken)
    ps = load_plan_settings(settings({"plan.budget": "4GB", "plan.keep_plans": 2}))
    with pytest.raises(duckdb.Error):
        make_plan(con, ps)
    assert [r[0] for r in con.execute("SELECT plan_id FROM plans ORDER BY 1").fetchall()] == [2, 3]
    assert con.execute("SELECT count(*) FROM plan_rows WHERE plan_id = 4").fetchall()[0][0] == 0


def test_rows_of_a_killed_plan_are_invisible_and_replaced(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Plan rows are committed a chunk at a time and the plan exists once its `plans` row is
    # written: a run killed in between leaves rows no reader sees, and the next run clears them.
    tables = catalog_tables(3000, 5)
    ps1 = load_plan_settings(settings({"plan.budget": "1GB"}))
    ps2 = load_plan_settings(settings({"plan.budget": "2GB"}))
    con, clean = memory_catalog(), memory_catalog()
    for c in (con, clean):
        insert_catalog(c, tables)
        make_plan(c, ps1)
    monkeypatch.setattr(planner, "CHUNK_ROWS", 500)
    monkeypatch.setattr(planner, "ROW_GROUP_ROWS", 100)
    calls = []

    def killed(out, table):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) > 2:
            raise SystemExit("killed")  # as a kill would: no clean-up runs
        real(out, table)

    real = planner._insert_rows
    monkeypatch.setattr(planner, "_insert_rows", killed)
    monkeypatch.setattr(planner, "_forget_rows", lambda out, plan_id: None)
    with pytest.raises(SystemExit):
        make_plan(con, ps2)
    monkeypatch.undo()
    # Its rows are stored, and no reader sees them: plan_tracks shows named plans only.
    assert con.execute("SELECT count(*) FROM plan_rows WHERE plan_id = 2").fetchall()[0][0] > 0
    assert con.execute("SELECT count(*) FROM plan_tracks WHERE plan_id = 2").fetchall()[0][0] == 0
    assert _plan_rows(con) == con.execute(  # the current plan is still plan 1, whole
        "SELECT * EXCLUDE (plan_id) FROM plan_tracks WHERE plan_id = 1 ORDER BY track_id"
    ).fetchall()
    assert make_plan(con, ps2).plan_id == make_plan(clean, ps2).plan_id == 2
    assert _plan_rows(con) == _plan_rows(clean)
    assert con.execute("SELECT count(*) FROM plan_tracks WHERE plan_id = 2").fetchall()[0][0] \
        == 3000


def test_plan_rows_are_inserted_as_whole_row_groups(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Every insert but the last is whole row groups (a part-filled one costs a merge at the
    # next checkpoints); the rows past them go in with the next chunk's, none lost or moved.
    tables = catalog_tables(3000, 5)
    ps = load_plan_settings(settings({"plan.budget": "1GB"}))
    con, whole = memory_catalog(), memory_catalog()
    for c in (con, whole):
        insert_catalog(c, tables)
    make_plan(whole, ps)
    monkeypatch.setattr(planner, "CHUNK_ROWS", 450)
    monkeypatch.setattr(planner, "ROW_GROUP_ROWS", 128)
    sizes = []
    real = planner._insert_rows

    def counted(out, table):  # type: ignore[no-untyped-def]
        sizes.append(table.num_rows)
        real(out, table)

    monkeypatch.setattr(planner, "_insert_rows", counted)
    make_plan(con, ps)
    assert sum(sizes) == 3000 and len(sizes) > 2
    assert all(n % 128 == 0 for n in sizes[:-1]) and sizes[-1] == 3000 % 128
    assert _plan_rows(con) == _plan_rows(whole)


def test_the_plan_memory_limit_holds_while_planning_only(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    con = memory_catalog()
    insert_catalog(con, catalog_tables(500, 1))
    con.execute("SET memory_limit = '1GiB'")
    seen = []
    real = planner._plan_scratch

    def watched(con, *args, **kw):  # type: ignore[no-untyped-def]
        seen.append(con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])
        return real(con, *args, **kw)

    monkeypatch.setattr(planner, "_plan_scratch", watched)
    make_plan(con, load_plan_settings(settings({"plan.budget": "1GB"})),
              memory_limit=600 * 2**20)
    assert seen == ["600.0 MiB"]
    assert con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] == "1.0 GiB"


def test_current_plan_has_the_contract_columns() -> None:
    con = memory_catalog()
    insert_catalog(con, catalog_tables(500, 1))
    make_plan(con, load_plan_settings(settings({"plan.budget": "1GB"})))
    cols = {r[0] for r in con.execute("DESCRIBE current_plan").fetchall()}
    assert {"track_id", "tier", "status", "est_bytes", "phase"} <= cols
    tiers = {r[0] for r in con.execute("SELECT DISTINCT tier FROM current_plan").fetchall()}
    assert tiers <= {"original", "reencode", "metadata_only"}


def test_shared_isrc_keys_are_found_exactly() -> None:
    from soundkeep.plan.priority import shared_keys

    rng = np.random.default_rng(3)
    keys = rng.integers(0, 2**63, 50_000, dtype=np.uint64)
    keys[1000:1100] = keys[:100]            # shared pairs
    keys[2000:2010] = keys[3000] + np.uint64(1 << 24)  # same low bits, other keys
    present = rng.random(len(keys)) < 0.9
    present[:100] = present[1000:1100] = True
    _, shared = shared_keys(keys, present)
    values, counts = np.unique(keys[present], return_counts=True)
    expect = present & np.isin(keys, values[counts > 1])
    assert np.array_equal(shared, expect)
    assert shared[:100].all()


def test_rank_order_with_and_without_real_listens() -> None:
    from soundkeep.plan.priority import rank_order

    rng = np.random.default_rng(5)
    n = 20_000
    pop = rng.integers(0, 101, n).astype(np.int16)
    sec = np.round(rng.random(n) * 3, 3)
    tid = rng.permutation(n).astype(np.int64) * 13 - 5000
    ps = load_plan_settings(settings())
    from soundkeep.plan.listens import estimate_listens

    est = estimate_listens(pop, sec, ps.listens, ps.secondary.maximum)
    con = memory_catalog()
    expected = np.lexsort((tid, -sec, -est, -pop.astype(np.int64)))
    assert np.array_equal(rank_order(con, pop, est, sec, tid, real_listens=False), expected)
    assert np.array_equal(rank_order(con, pop, est, sec, tid, real_listens=True), expected)
    real = est.copy()
    real[::3] = rng.integers(0, 10**9, len(real[::3]))
    expected = np.lexsort((tid, -sec, -real, -pop.astype(np.int64)))
    assert np.array_equal(rank_order(con, pop, real, sec, tid, real_listens=True), expected)


def test_an_empty_catalog_plans_to_nothing() -> None:
    con = memory_catalog()
    result = make_plan(con, load_plan_settings(settings()))
    s = result.summary
    assert s["tracks_total"] == 0 and s["counts_by_status"] == {} and s["phases"] == []
    from soundkeep.plan.coverage import coverage

    assert coverage(con)["curve"] == []


def test_an_archive_of_plan_schema_1_is_migrated_with_its_plans(make_archive) -> None:  # type: ignore[no-untyped-def]
    """Schema 1 stored tier and status as text in a plan_tracks table, under a scalar-subquery
    current_plan view: opening it gives the semi-join view and the same rows, as codes."""
    from soundkeep import archive, db

    arch = make_archive(300)
    root = arch.root
    con = arch.con
    make_plan(con, load_plan_settings(settings(), budget="4MB"))
    make_plan(con, load_plan_settings(settings(), budget="9MB"))
    before = con.execute("SELECT * FROM plan_tracks ORDER BY plan_id, track_id").fetchall()
    assert {r[5] for r in before} >= {"original", "metadata_only"}
    assert {r[-1] for r in before} == {None}  # no file held: schema 1 had sha256 last
    con.execute("CREATE TABLE plan_tracks_1 AS "
                "SELECT * EXCLUDE (file_key), NULL::VARCHAR AS sha256 FROM plan_tracks")
    con.execute("DROP VIEW current_plan")
    con.execute("DROP VIEW plan_tracks")
    con.execute("DROP TABLE plan_rows")
    con.execute("DROP TABLE plan_names")
    con.execute("ALTER TABLE plan_tracks_1 RENAME TO plan_tracks")
    con.execute("""CREATE VIEW current_plan AS SELECT * FROM plan_tracks
                   WHERE plan_id = (SELECT max(plan_id) FROM plans)""")
    db.set_meta(con, "schema_version.plan", "1")
    con.execute("DROP TABLE plan_held")  # from schema 5
    arch.close()
    with archive.open_archive(root) as again:
        c = again.con
        sql = c.execute("SELECT sql FROM duckdb_views() WHERE view_name = "
                        "'current_plan'").fetchall()[0][0]
        assert "SEMI JOIN" in sql.upper()
        assert db.get_meta(c, "schema_version.plan") == "5"
        assert c.execute("SELECT * FROM plan_tracks ORDER BY plan_id, track_id"
                         ).fetchall() == before
        assert c.execute("SELECT count(*) FROM current_plan").fetchall()[0][0] == 300
        # And a plan made after the migration is stored as usual.
        result = make_plan(c, load_plan_settings(settings(), budget="5MB"))
        assert c.execute("SELECT count(*) FROM current_plan WHERE plan_id = ?",
                         [result.plan_id]).fetchall()[0][0] == 300


def test_plan_schema_3_rows_name_their_files_by_key_after_migration(make_archive) -> None:  # type: ignore[no-untyped-def]
    """Schema 3 named a held track's file by its sha256: opening such an archive keeps every
    row, with the file as its key, and explain still finds the file."""
    from conftest import insert_holdings

    from soundkeep import archive, db
    from soundkeep.plan import priority
    from soundkeep.plan.explain import explain

    arch = make_archive(300)
    root, con = arch.root, arch.con
    ids = con.execute("SELECT track_id FROM tracks ORDER BY track_id").fetchnumpy()["track_id"]
    held = np.asarray(ids[::3], dtype=np.int64)
    insert_holdings(con, held, np.full(held.size, 4_000_000))
    make_plan(con, load_plan_settings(settings(), budget="200MB"))
    before = con.execute("SELECT * FROM plan_tracks ORDER BY plan_id, track_id").fetchall()
    assert {r[1] for r in before if r[-1] is not None} == set(held.tolist())
    con.execute("DROP VIEW current_plan")
    con.execute("DROP VIEW plan_tracks")
    con.execute("""CREATE TABLE plan_rows_3 AS
                   SELECT r.* EXCLUDE (file_key), f.sha256 FROM plan_rows r
                   LEFT JOIN audio_files f ON f.file_key = r.file_key""")
    con.execute("DROP TABLE plan_rows")
    con.execute("ALTER TABLE plan_rows_3 RENAME TO plan_rows")
    db.set_meta(con, "schema_version.plan", "3")
    con.execute("DROP TABLE plan_held")  # from schema 5
    arch.close()
    with archive.open_archive(root) as again:
        c = again.con
        assert db.get_meta(c, "schema_version.plan") == "5"
        assert c.execute("SELECT * FROM plan_tracks ORDER BY plan_id, track_id"
                         ).fetchall() == before
        # No held files found yet: the next plan finds them.
        assert db.get_meta(c, priority.HELD_META) is None
        assert c.execute(f"SELECT count(*) FROM {priority.HELD_TABLE}").fetchone() == (0,)
        make_plan(c, load_plan_settings(settings(), budget="150MB"))
        assert (c.execute(f"SELECT * FROM {priority.HELD_TABLE} ORDER BY track_id").fetchall()
                == c.execute(f"{priority._HELD} ORDER BY track_id").fetchall())
        assert c.execute(f"SELECT count(*) FROM {priority.HELD_TABLE}").fetchone() == (100,)
        kept = int(c.execute("SELECT min(track_id) FROM current_plan WHERE file_key IS NOT NULL "
                             "AND tier = 'original'").fetchall()[0][0])
        (e,) = explain(c, str(kept))
        assert e["held_sha256"] == fake_sha256(kept)
        assert e["held_file_key"] == fake_sha256(kept)[:16]
        # A file no longer linked to the track is no longer its file.
        c.execute("DELETE FROM audio_links WHERE track_id = ?", [kept])
        (e,) = explain(c, str(kept))
        assert e["held_sha256"] is None and e["held_file_key"] == fake_sha256(kept)[:16]


def test_audio_schema_1_files_get_their_keys_and_the_same_plan(make_archive) -> None:  # type: ignore[no-untyped-def]
    """Audio schema 1 had no file_key: opening such an archive gives every file and link its
    key, from which the plan finds the same files (the same holdings digest: the plan made
    before is reused), and the key is required from then on."""
    from conftest import insert_holdings

    from soundkeep import archive, db

    arch = make_archive(300)
    root, con = arch.root, arch.con
    ids = con.execute("SELECT track_id FROM tracks ORDER BY track_id").fetchnumpy()["track_id"]
    held = np.asarray(ids[::4], dtype=np.int64)
    insert_holdings(con, held, np.full(held.size, 3_000_000))
    ps = load_plan_settings(settings(), budget="200MB")
    first = make_plan(con, ps)
    keys = con.execute("SELECT sha256, file_key FROM audio_links ORDER BY 1").fetchall()
    for table in ("audio_files", "audio_links"):
        con.execute(f"ALTER TABLE {table} DROP COLUMN file_key")
    db.set_meta(con, "schema_version.audio", "1")
    arch.close()
    with archive.open_archive(root) as again:
        c = again.con
        assert db.get_meta(c, "schema_version.audio") == "3"
        assert c.execute("SELECT sha256, file_key FROM audio_links ORDER BY 1").fetchall() == keys
        assert c.execute("SELECT count(*) FROM audio_files f JOIN audio_links l "
                         "USING (sha256, file_key)").fetchone() == (held.size,)
        replan = make_plan(c, ps)
        assert replan.reused and replan.plan_id == first.plan_id
        with pytest.raises(duckdb.ConstraintException):
            c.execute("INSERT INTO audio_links (sha256, track_id, method) "
                      "VALUES ('00', 1, 'isrc')")


def test_held_files_are_found_again_only_when_the_holdings_change(make_archive, monkeypatch  # type: ignore[no-untyped-def]
                                                                   ) -> None:
    """plan_held, each held track's file, is kept between plans while the holdings stay the
    same, made again when a file or link changes, and a failure leaves the old one whole."""
    from conftest import insert_holdings

    from soundkeep import db
    from soundkeep.plan import priority

    arch = make_archive(300)
    con = arch.con
    ids = con.execute("SELECT track_id FROM tracks ORDER BY track_id").fetchnumpy()["track_id"]
    held = np.asarray(ids[:40], dtype=np.int64)
    insert_holdings(con, held, np.full(held.size, 4_000_000))

    def stored() -> list[tuple]:
        return con.execute(f"SELECT * FROM {priority.HELD_TABLE} ORDER BY track_id").fetchall()

    def direct() -> list[tuple]:
        return con.execute(f"{priority._HELD} ORDER BY track_id").fetchall()

    make_plan(con, load_plan_settings(settings(), budget="200MB"))
    assert len(stored()) == 40 and stored() == direct()
    assert stored()[0] == (held[0], fake_key(int(held[0])), 4_000_000, None)
    holdings = priority.fingerprint(con).holdings
    assert not priority.update_held(con, holdings)  # unchanged: kept
    # Another budget, the same holdings: the plan reads the table as it is.
    made: list[bool] = []
    monkeypatch.setattr(planner, "update_held",
                        lambda c, h: made.append(priority.update_held(c, h)) or made[-1])
    make_plan(con, load_plan_settings(settings(), budget="100MB"))
    assert made == [False]
    assert db.get_meta(con, priority.HELD_META).startswith(holdings + ":")

    # A file grows and a link moves to another track: the next plan sees both.
    moved, target = int(held[1]), int(ids[-1])
    con.execute("UPDATE audio_files SET size = 5_000_000 WHERE sha256 = ?",
                [fake_sha256(int(held[0]))])
    con.execute("UPDATE audio_links SET track_id = ? WHERE track_id = ?", [target, moved])
    result = make_plan(con, load_plan_settings(settings(), budget="100MB"))
    assert made == [False, True]
    assert stored() == direct() and len(stored()) == 40
    rows = dict(con.execute("SELECT track_id, held_bytes FROM plan_tracks WHERE plan_id = ?",
                            [result.plan_id]).fetchall())
    assert rows[int(held[0])] == 5_000_000 and rows[target] == 4_000_000
    assert rows[moved] in (None, 0)

    # Finding the files fails half way: the table and its digest stay as they were.
    before, digest = stored(), db.get_meta(con, priority.HELD_META)
    con.execute("DELETE FROM audio_links WHERE track_id = ?", [target])
    monkeypatch.setattr(priority, "_HELD", priority._HELD + " AND no_such_column")
    with pytest.raises(duckdb.Error):
        priority.update_held(con, priority.fingerprint(con).holdings)
    assert stored() == before and db.get_meta(con, priority.HELD_META) == digest
    monkeypatch.undo()
    assert priority.update_held(con, priority.fingerprint(con).holdings)
    assert stored() == direct() and len(stored()) == 39


def test_an_empty_file_is_no_track_s_file(make_archive) -> None:  # type: ignore[no-untyped-def]
    """A linked file of size 0 (an empty file scanned) is not held: the plan gives the track
    no file, and explain and encode find none for it, whatever file the plan named."""
    from conftest import insert_holdings

    from soundkeep.plan import store
    from soundkeep.plan.explain import explain

    arch = make_archive(300)
    con = arch.con
    ids = con.execute("SELECT track_id FROM tracks ORDER BY popularity DESC, track_id LIMIT 2"
                      ).fetchnumpy()["track_id"]
    empty, full = int(ids[0]), int(ids[1])
    insert_holdings(con, np.array([empty, full]), np.array([0, 4_000_000]))
    make_plan(con, load_plan_settings(settings(), budget="1GB"))
    rows = dict(con.execute("SELECT track_id, file_key FROM current_plan WHERE track_id IN "
                            "(?, ?)", [empty, full]).fetchall())
    assert rows == {empty: None, full: fake_key(full)}
    (e,) = explain(con, str(empty))
    assert e["held_sha256"] is None and e["status"] == "missing_audio"
    # Not even as a plan naming no file (made before the scan) would take it.
    chosen = con.execute(store.chosen_file_sql(
        "(SELECT track_id, NULL::UBIGINT AS file_key FROM tracks)")).fetchall()
    assert chosen == [(full, fake_sha256(full))]
