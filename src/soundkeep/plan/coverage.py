"""Coverage of a plan: what share of listens the kept tracks carry, storage per tier, by genre.

"N % of tracks carry M % of listens": tracks sorted by listens, most listened first; the curve
gives the listens share of the top N % of tracks, and the plan's own point is the share of
tracks it keeps audio for against the share of listens their recordings carry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from soundkeep.plan.store import get_plan

# Points of the curve: log-spaced track shares (the head matters most), plus round figures.
_CURVE_SHARES = np.unique(np.concatenate([np.logspace(-7, 0, 141),
                                          np.linspace(0.01, 1.0, 100)]))
_COLOURS = {"original": "#2ca02c", "reencode": "#ff7f0e", "metadata_only": "#b0b0b0"}
_OTHER = ["#1f77b4", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
_POP_BANDS = [(0, 0), (1, 9), (10, 19), (20, 29), (30, 39), (40, 49), (50, 59), (60, 69),
              (70, 79), (80, 89), (90, 100)]


def _curve(con: duckdb.DuckDBPyConnection, pid: int) -> tuple[int, float, list[list[float]]]:
    """Tracks, listens and [share of tracks, share of listens] for the top tracks by listens.

    DuckDB sorts (out of core if need be) and streams the listens in batches; the running sum
    is carried from batch to batch, so it is the same sequential sum as one cumsum, in memory
    that does not grow with the catalog.
    """
    n = int(con.execute("SELECT count(*) FROM plan_tracks WHERE plan_id = ?",
                        [pid]).fetchall()[0][0])
    if n == 0:
        return 0, 0.0, []
    ks = np.unique(np.maximum(1, np.rint(_CURVE_SHARES * n).astype(np.int64)))
    at = np.zeros(len(ks))
    reader = con.sql(f"SELECT listens_est::DOUBLE FROM plan_tracks WHERE plan_id = {pid} "
                     "ORDER BY listens_est DESC").arrow()
    done, carry = 0, 0.0
    for batch in reader:
        x = np.asarray(batch.column(0).fill_null(0.0).to_numpy(zero_copy_only=False),
                       dtype=np.float64).copy()
        if x.size == 0:
            continue
        x[0] += carry
        cum = np.cumsum(x)
        lo, hi = np.searchsorted(ks, [done + 1, done + x.size + 1])
        at[lo:hi] = cum[ks[lo:hi] - done - 1]
        carry = float(cum[-1])
        done += x.size
    total = carry
    if total <= 0:
        return n, total, []
    by_k = dict(zip(ks.tolist(), at.tolist(), strict=True))
    out = []
    for share in _CURVE_SHARES:
        k = max(1, round(float(share) * n))
        out.append([k / n, by_k[k] / total])
    return n, total, out


def coverage(con: duckdb.DuckDBPyConnection, plan_id: int | None = None,
             genres: int = 20) -> dict[str, Any]:
    """The coverage report of a plan (default: the newest)."""
    rec = get_plan(con, plan_id)
    s = rec.summary
    pid = rec.plan_id
    empty = rec.settings.empty_tier.name
    n, total, curve = _curve(con, pid)
    bands_sql = " ".join(f"WHEN pop BETWEEN {lo} AND {hi} THEN '{lo}-{hi}'" if lo != hi
                         else f"WHEN pop = {lo} THEN '{lo}'" for lo, hi in _POP_BANDS)
    by_pop = con.execute(f"""
        SELECT band, tier, count(*), sum(listens_est), sum(est_bytes) FROM (
            SELECT CASE {bands_sql} END AS band, tier,
                   listens_est, est_bytes
            FROM (SELECT p.tier, p.listens_est, p.est_bytes, coalesce(t.popularity, 0) AS pop
                  FROM plan_tracks p
                  JOIN tracks t USING (track_id) WHERE p.plan_id = {pid}))
        GROUP BY ALL""").fetchall()
    bands: dict[str, dict[str, Any]] = {}
    for band, tier, tracks, lsum, bsum in by_pop:
        entry = bands.setdefault(band, {"band": band, "tracks": 0, "listens": 0.0, "bytes": 0,
                                        "tiers": {}})
        entry["tracks"] += int(tracks)
        entry["listens"] += float(lsum or 0.0)
        entry["bytes"] += int(bsum or 0)
        entry["tiers"][tier] = int(tracks)
    order = [f"{lo}-{hi}" if lo != hi else f"{lo}" for lo, hi in _POP_BANDS]
    by_genre = con.execute(f"""
        WITH first_artist AS (
            SELECT track_id, arg_min(artist_id, position) AS artist_id
            FROM track_artists GROUP BY track_id)
        SELECT g.genre, count(*) AS tracks,
               count(*) FILTER (WHERE p.tier <> '{empty}') AS kept,
               sum(p.listens_est) AS listens,
               sum(p.listens_est) FILTER (WHERE p.tier <> '{empty}') AS listens_kept,
               sum(p.est_bytes) AS bytes
        FROM plan_tracks p
        JOIN first_artist f ON f.track_id = p.track_id
        JOIN artist_genres g ON g.artist_id = f.artist_id
        WHERE p.plan_id = {pid}
        GROUP BY g.genre ORDER BY listens DESC, g.genre LIMIT {int(genres)}""").fetchall()
    budget = s.get("budget_bytes")
    kept = int(s.get("bytes_planned", 0))
    return {
        "plan_id": pid,
        "tracks_total": n,
        "tracks_kept": s.get("tracks_kept"),
        "tracks_kept_share": s.get("tracks_kept_share"),
        "listens_total": total,
        "listens_kept_share": s.get("listens_kept_share"),
        "listens_weighted_share": s.get("listens_weighted_share"),
        "bytes_kept": kept,
        "budget_bytes": budget,
        "budget_used_share": (kept / budget) if budget else None,
        "by_tier": s.get("by_tier", {}),
        "by_status": s.get("counts_by_status", {}),
        "by_popularity": [bands[b] for b in order if b in bands],
        "by_genre": [{"genre": g, "tracks": int(t), "tracks_kept": int(k),
                      "kept_share": int(k) / int(t) if t else 0.0,
                      "listens": float(ls or 0.0),
                      "listens_kept_share": float(lk or 0.0) / float(ls) if ls else 0.0,
                      "bytes": int(b or 0)} for g, t, k, ls, lk, b in by_genre],
        "curve": curve,
    }


def plot(report: dict[str, Any], path: Path) -> None:
    """Draw the coverage chart (curve, storage per tier, tiers by popularity) into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 5))
    ax = axes[0]
    curve = np.array(report["curve"]) if report["curve"] else np.zeros((0, 2))
    if len(curve):
        ax.plot(100 * curve[:, 0], 100 * curve[:, 1], color="#1f77b4",
                label="top N % of tracks by listens")
    ts, ls = report.get("tracks_kept_share"), report.get("listens_kept_share")
    if ts is not None and ls is not None:
        ax.scatter([100 * ts], [100 * ls], color="#d62728", zorder=3,
                   label=f"plan: {100 * ts:.1f} % of tracks, {100 * ls:.1f} % of listens")
    ax.set_xscale("log")
    ax.set_xlabel("tracks (%)")
    ax.set_ylabel("listens carried (%)")
    ax.set_title("N % of tracks carry M % of listens")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)

    names = list(report["by_tier"])
    colour = {t: _COLOURS.get(t, _OTHER[i % len(_OTHER)]) for i, t in enumerate(names)}
    ax = axes[1]
    tiers = [t for t, v in report["by_tier"].items() if v["bytes"] > 0]
    sizes = [report["by_tier"][t]["bytes"] / 1e12 for t in tiers]
    ax.bar(tiers, sizes, color=[colour[t] for t in tiers])
    if report.get("budget_bytes"):
        ax.axhline(report["budget_bytes"] / 1e12, color="#d62728", linestyle="--",
                   label="budget")
        ax.legend(fontsize=8)
    ax.set_ylabel("TB")
    ax.set_title(f"storage per tier (kept {report['bytes_kept'] / 1e12:.3g} TB)")

    ax = axes[2]
    bands = report["by_popularity"]
    labels = [b["band"] for b in bands]
    all_tiers = [t for t in names if any(t in b["tiers"] for b in bands)]
    bottom = np.zeros(len(bands))
    for t in all_tiers:
        vals = np.array([b["tiers"].get(t, 0) / max(b["tracks"], 1) for b in bands])
        ax.bar(labels, 100 * vals, bottom=100 * bottom, label=t, color=colour.get(t))
        bottom += vals
    ax.set_xlabel("popularity")
    ax.set_ylabel("tracks (%)")
    ax.set_title("tier by popularity")
    ax.tick_params(axis="x", rotation=45)
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    tmp.replace(path)
