"""The chunked planner against the whole-catalog reference (planner.compute), row for row.

make_plan reads the catalog in rank-ordered chunks and finds the knapsack's critical
increment from a sampled window (or, when the sample misses, a histogram); compute holds
every track at once and runs the selection of budget.solve. Small chunks, samples and
windows force chunk boundaries, the sampled window, and the histogram fallback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import numpy as np
from conftest import catalog_tables, insert_catalog, insert_holdings, memory_catalog, settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from soundkeep.catalog import derived
from soundkeep.plan import planner
from soundkeep.plan.config import PlanSettings, load_plan_settings
from soundkeep.plan.priority import load_inputs

ROW = ("track_id", "rank", "listens_est", "priority", "tier", "status", "est_bytes", "phase",
       "duplicate_of", "held_bytes", "file_key")


@contextmanager
def sizes(chunk: int, sample: int, window: float) -> Iterator[None]:
    """Run the planner with these chunk and sample sizes and window share."""
    saved = planner.CHUNK_ROWS, planner.SAMPLE_ROWS, planner.WINDOW_SHARE
    planner.CHUNK_ROWS, planner.SAMPLE_ROWS, planner.WINDOW_SHARE = chunk, sample, window
    try:
        yield
    finally:
        planner.CHUNK_ROWS, planner.SAMPLE_ROWS, planner.WINDOW_SHARE = saved


def reference(con: duckdb.DuckDBPyConnection, ps: PlanSettings) -> tuple[list[tuple], dict]:
    """Rows (by track_id) and summary of the whole-catalog computation."""
    comp = planner.compute(load_inputs(con, ps), ps, con)
    inp = comp.inputs
    tiers = [t.name for t in ps.tiers]
    names = planner.statuses(ps)
    key = inp.file_key.to_pylist()
    rows = [(int(inp.track_id[i]), int(comp.rank[i]), float(comp.listens[i]),
             float(inp.secondary[i]), tiers[comp.tier[i]], names[comp.status[i]],
             int(comp.est_bytes[i]), int(comp.phase[i]) or None,
             None if comp.duplicate_of[i] < 0 else int(comp.duplicate_of[i]),
             int(inp.held_bytes[i]) or None, key[i])
            for i in range(len(inp))]
    return sorted(rows), comp.summary


def chunked(con: duckdb.DuckDBPyConnection, ps: PlanSettings) -> tuple[list[tuple], dict]:
    """Rows (by track_id) and summary of make_plan."""
    result = planner.make_plan(con, ps)
    rows = con.execute(f"SELECT {', '.join(ROW)} FROM current_plan ORDER BY track_id"
                       ).fetchall()
    summary = dict(result.summary)
    # The reference has no stored plan, nor a catalog whose derived columns it could read.
    for key in ("plan_id", "derived_columns_fresh", "hint"):
        summary.pop(key, None)
    return rows, summary


def assert_same_summary(a: dict, b: dict) -> None:
    """Equal, except float sums made in another grouping (chunks) within rounding."""
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], float) and a[k] is not None:
            assert np.isclose(a[k], b[k], rtol=1e-12, atol=0), k
        else:
            assert a[k] == b[k], k


@st.composite
def cases(draw: st.DrawFn) -> dict:
    n = draw(st.integers(1, 1500))
    return {"n": n, "seed": draw(st.integers(0, 10_000)),
            "budget": draw(st.one_of(st.just("unlimited"), st.integers(0, n * 6_000_000))),
            "bundle": draw(st.integers(1_000_000, 200_000_000)),
            "dedupe": draw(st.sampled_from([-1, 0, 100])),
            "listens": draw(st.sampled_from([0.0, 0.3])),
            "held": draw(st.sampled_from([0.0, 0.2])),
            "chunk": draw(st.integers(1, 400)),
            "sample": draw(st.integers(1, 64)),
            "window": draw(st.sampled_from([1 / 64, 1e-9, 0.5]))}


@hsettings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_chunked_plan_equals_the_whole_catalog_plan(case: dict) -> None:
    tables = catalog_tables(case["n"], case["seed"], isrc_dup_share=0.2,
                            listens_share=case["listens"], zero_duration_share=0.02)
    con = memory_catalog()
    insert_catalog(con, tables)
    if case["held"]:
        rng = np.random.default_rng(case["seed"])
        ids = tables["tracks"].column("track_id").to_numpy()
        held = ids[rng.random(len(ids)) < case["held"]]
        if len(held):
            insert_holdings(con, held, rng.integers(500_000, 9_000_000, len(held)))
    ps = load_plan_settings(settings({"plan.budget": case["budget"],
                                      "pack.bundle_size": case["bundle"],
                                      "plan.isrc_dedupe_max_popularity": case["dedupe"]}))
    want_rows, want = reference(con, ps)
    with sizes(case["chunk"], case["sample"], case["window"]):
        got_rows, got = chunked(con, ps)
    assert got_rows == want_rows
    assert_same_summary(got, want)
    if ps.budget_bytes is not None:
        assert got["bytes_planned"] <= ps.budget_bytes


def test_a_missed_sample_falls_back_to_the_histogram() -> None:
    con = memory_catalog()
    insert_catalog(con, catalog_tables(3000, 7))
    ps = load_plan_settings(settings({"plan.budget": "3GB"}))
    want_rows, want = reference(con, ps)
    calls: list[int] = []
    real = planner._Window.cut

    def counted(self: planner._Window, budget: int):  # type: ignore[no-untyped-def]
        out = real(self, budget)
        calls.append(out is None)
        return out

    planner._Window.cut = counted  # type: ignore[method-assign]
    try:
        # A window of zero width around the sample's estimate misses the critical increment.
        with sizes(97, 16, 0.0):
            got_rows, got = chunked(con, ps)
    finally:
        planner._Window.cut = real  # type: ignore[method-assign]
    assert calls == [True, False]
    assert got_rows == want_rows
    assert_same_summary(got, want)


def test_the_fingerprint_is_the_exact_wrapping_sum_of_row_hashes() -> None:
    con = memory_catalog()
    insert_catalog(con, catalog_tables(5000, 3))
    ps = load_plan_settings(settings({"plan.budget": "2GB"}))
    inp = load_inputs(con, ps)
    planner.make_plan(con, ps)
    stored = con.execute("SELECT catalog_fingerprint FROM plans").fetchall()[0][0]
    assert stored == inp.fingerprint
    def digest(sql: str) -> str:
        hashes = con.execute(sql).fetchall()
        return f"{len(hashes)}-{sum(int(h) for (h,) in hashes) % (1 << 64):016x}"

    assert stored.split(":")[:2] == [
        digest("SELECT hash(track_id, release_id, isrc, artist_popularity, artist_followers, "
               "release_popularity, isrc_shared) FROM tracks"),
        digest("SELECT hash(track_id, popularity, listens, distributable, duration_ms) "
               "FROM tracks")]

    def replanned() -> bool:
        return not planner.make_plan(con, ps).reused

    # A title is not read by the plan; an artist's followers, a credit and a release's
    # popularity are.
    con.execute("UPDATE tracks SET title = title || '!'")
    assert not replanned()
    con.execute("UPDATE artists SET followers = followers * 3 + 1 WHERE artist_id = 0")
    assert replanned()
    con.execute("UPDATE track_artists SET artist_id = 1 WHERE artist_id = 0")
    assert replanned()
    con.execute("UPDATE releases SET popularity = 99 WHERE release_id = 0")
    assert replanned()
    con.execute("UPDATE tracks SET isrc = 'XX0000000001' WHERE track_id = "
                "(SELECT min(track_id) FROM tracks WHERE isrc IS NOT NULL)")
    assert replanned()
    assert not replanned()


def test_the_plan_reads_fresh_derived_columns_and_makes_stale_ones_itself() -> None:
    """After `refresh` the plan reads what tracks keep of their artists and release; once
    those change, it makes the values itself until the next refresh. Same plan either way."""
    con = memory_catalog()
    insert_catalog(con, catalog_tables(3000, 11, isrc_dup_share=0.1))
    ps = load_plan_settings(settings({"plan.budget": "3GB"}))
    want_rows, want = reference(con, ps)
    stale_rows, stale = chunked(con, ps)
    assert planner.make_plan(con, ps).summary["derived_columns_fresh"] is False
    assert derived.refresh(con) > 0
    con.execute("DELETE FROM plans")
    fresh = planner.make_plan(con, ps)
    assert fresh.summary["derived_columns_fresh"] is True and "hint" not in fresh.summary
    fresh_rows = con.execute(f"SELECT {', '.join(ROW)} FROM current_plan ORDER BY track_id"
                             ).fetchall()
    assert stale_rows == fresh_rows == want_rows
    assert_same_summary(stale, want)

    # An artist's followers change: the stored maxima are stale, and not used.
    con.execute("UPDATE artists SET followers = followers * 1000 + 1 WHERE artist_id < 20")
    moved_rows, _ = chunked(con, ps)
    assert planner.make_plan(con, ps).summary["derived_columns_fresh"] is False
    assert moved_rows == reference(con, ps)[0] != want_rows


def test_an_archive_connection_keeps_rank_order_and_its_setting(make_archive) -> None:  # type: ignore[no-untyped-def]
    arch = make_archive(n=3000, seed=5)
    con = arch.con
    assert con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()[0][0] \
        is False
    ps = load_plan_settings(settings({"plan.budget": "2GB"}))
    want_rows, _ = reference(con, ps)
    with sizes(257, 16, 1 / 64):
        got_rows, _ = chunked(con, ps)
    assert got_rows == want_rows
    assert con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()[0][0] \
        is False
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert planner.SCRATCH not in tables


def test_the_coverage_curve_is_the_sequential_sum_of_sorted_listens() -> None:
    from soundkeep.plan.coverage import _CURVE_SHARES, coverage

    con = memory_catalog()
    insert_catalog(con, catalog_tables(4000, 8, listens_share=0.2))
    planner.make_plan(con, load_plan_settings(settings({"plan.budget": "3GB"})))
    listens = np.array([r[0] for r in con.execute(
        "SELECT listens_est FROM current_plan").fetchall()], dtype=np.float64)
    cum = np.cumsum(np.sort(listens)[::-1])
    n = len(listens)
    want = [[max(1, round(float(s) * n)) / n, float(cum[max(1, round(float(s) * n)) - 1])
             / float(cum[-1])] for s in _CURVE_SHARES]
    cov = coverage(con)
    assert cov["curve"] == want
    assert cov["tracks_total"] == n and cov["listens_total"] == float(cum[-1])
