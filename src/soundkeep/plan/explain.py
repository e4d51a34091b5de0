"""Why a track got its place in a plan, in plain words, and what budget would change it.

The plan's own inputs are stored with it (listens, duration, held size, status, settings), so
the knapsack offers are rebuilt exactly as the plan made them: for each step on the track's
hull, the budget from which the greedy takes it is the bytes of every offer before it.
"""

from __future__ import annotations

import re
from typing import Any

import duckdb
import numpy as np

from soundkeep import units
from soundkeep.plan import budget as knapsack
from soundkeep.plan import planner
from soundkeep.plan.config import PlanError, PlanSettings
from soundkeep.plan.priority import read_arrow
from soundkeep.plan.store import PlanRecord, get_plan

_ISRC = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$")


def find_tracks(con: duckdb.DuckDBPyConnection, key: str, plan_id: int) -> list[int]:
    """Track ids in a plan matching a track_id or an ISRC (an ISRC may match several rows)."""
    text = key.strip()
    isrc = text.replace("-", "").upper()
    if _ISRC.match(isrc):
        rows = con.execute(
            "SELECT p.track_id FROM plan_tracks p JOIN tracks t ON t.track_id = p.track_id "
            "WHERE p.plan_id = ? AND t.isrc = ? ORDER BY p.rank", [plan_id, isrc]).fetchall()
    elif re.fullmatch(r"-?[0-9]+", text):
        rows = con.execute("SELECT track_id FROM plan_tracks WHERE plan_id = ? AND track_id = ?",
                           [plan_id, int(text)]).fetchall()
    else:
        raise PlanError("not a track id or an ISRC", field="TRACK", value=key,
                        expected="a track_id (integer) or an ISRC like USRC17607839")
    if not rows:
        raise PlanError(f"no such track in plan {plan_id}", field="TRACK", value=key,
                        expected="a track_id or ISRC of the catalog")
    return [int(r[0]) for r in rows]


def _offers(con: duckdb.DuckDBPyConnection, rec: PlanRecord
            ) -> tuple[np.ndarray, knapsack.Increments, list[np.ndarray]]:
    """Rebuild the plan's knapsack offers: (eligible ranks, increments, per-row bytes)."""
    ps = rec.settings
    table = read_arrow(con, f"""
        SELECT rank, listens_est, duration_ms, coalesce(held_bytes, 0) AS held_bytes, status
        FROM plan_tracks WHERE plan_id = {rec.plan_id}""")
    n = table.num_rows
    at = np.asarray(table.column("rank").to_numpy(), dtype=np.int64) - 1

    def ranked(name: str, dtype: type) -> np.ndarray:
        out = np.empty(n, dtype=dtype)
        out[at] = np.asarray(table.column(name).fill_null(0).to_numpy(), dtype=dtype)
        return out

    listens = ranked("listens_est", np.float64)
    duration = ranked("duration_ms", np.int64)
    held = ranked("held_bytes", np.int64)
    names = planner.statuses(ps)
    status_codes = np.empty(n, dtype=np.int64)
    status_codes[at] = np.asarray(
        table.column("status").combine_chunks().dictionary_encode().indices.to_numpy())
    dictionary = table.column("status").combine_chunks().dictionary_encode().dictionary
    remap = np.array([names.index(s.as_py()) for s in dictionary], dtype=np.int64)
    status = remap[status_codes]
    dup_rank = con.execute(f"""
        SELECT d.rank, r.rank FROM plan_tracks d JOIN plan_tracks r
          ON r.plan_id = d.plan_id AND r.track_id = d.duplicate_of
        WHERE d.plan_id = {rec.plan_id} AND d.duplicate_of IS NOT NULL""").fetchall()
    pairs = np.array(dup_rank, dtype=np.int64).reshape(-1, 2) - 1
    vlistens = planner.value_listens(listens, pairs[:, 0], pairs[:, 1], np.arange(n))
    rows = np.flatnonzero(planner.eligible_mask(status, ps))
    inc, b = planner.offers(ps, duration[rows], held[rows], vlistens[rows], rows + 1)
    return rows, inc, b


def _track_facts(con: duckdb.DuckDBPyConnection, track_id: int, plan_id: int
                 ) -> dict[str, Any]:
    row = con.execute("""
        SELECT p.rank, p.listens_est, t.popularity, p.priority, p.tier, p.status, p.est_bytes,
               p.phase, p.duplicate_of, t.distributable, t.listens IS NOT NULL, p.sha256,
               t.title, t.isrc, t.rights_status,
               (SELECT string_agg(a.name, ', ' ORDER BY x.position) FROM track_artists x
                  JOIN artists a ON a.artist_id = x.artist_id WHERE x.track_id = p.track_id)
        FROM plan_tracks p LEFT JOIN tracks t ON t.track_id = p.track_id
        WHERE p.plan_id = ? AND p.track_id = ?""", [plan_id, track_id]).fetchall()[0]
    keys = ["rank", "listens_est", "popularity", "priority", "tier", "status", "est_bytes",
            "phase", "duplicate_of", "distributable", "listens_real", "sha256", "title",
            "isrc", "rights_status", "artists"]
    return dict(zip(keys, row, strict=True))


def explain(con: duckdb.DuckDBPyConnection, key: str, plan_id: int | None = None
            ) -> list[dict[str, Any]]:
    """Explain every track matching key (track_id or ISRC) in a plan (default: the newest)."""
    rec = get_plan(con, plan_id)
    ids = find_tracks(con, key, rec.plan_id)
    rows, inc, b = _offers(con, rec)
    out = []
    for track_id in ids:
        facts = _track_facts(con, track_id, rec.plan_id)
        out.append(_explain_one(rec, facts, rows, inc, b, track_id))
    return out


def _tier_name_of_option(ps: PlanSettings, option: int) -> str:
    return ps.empty_tier.name if option < 0 else planner.audio_tiers(ps)[option].name


def _explain_one(rec: PlanRecord, f: dict[str, Any], rows: np.ndarray,
                 inc: knapsack.Increments, b: list[np.ndarray], track_id: int) -> dict[str, Any]:
    ps = rec.settings
    s = rec.summary
    total = float(s.get("listens_total") or 0.0)
    rank = int(f["rank"])
    listens = float(f["listens_est"] or 0.0)
    e: dict[str, Any] = {
        "plan_id": rec.plan_id, "track_id": track_id, "title": f["title"],
        "artists": f["artists"], "isrc": f["isrc"], "rank": rank,
        "tracks_total": int(s["tracks_total"]), "popularity": f["popularity"],
        "secondary_priority": f["priority"], "listens_est": listens,
        "listens_real": bool(f["listens_real"]),
        "listens_share": listens / total if total > 0 else 0.0,
        "tier": f["tier"], "status": f["status"], "est_bytes": int(f["est_bytes"] or 0),
        "phase": f["phase"], "phases_total": len(s.get("phases", [])),
        "duplicate_of": f["duplicate_of"], "distributable": bool(f["distributable"]),
        "rights_status": f["rights_status"], "held_sha256": f["sha256"],
        "budget_bytes": ps.budget_bytes,
        "cutoff_listens_per_mb": s.get("cutoff_listens_per_mb"),
        "steps": [],
    }
    # The track's offers, in hull order, each with the budget from which it is taken.
    pos = int(np.searchsorted(rows, rank - 1))
    if pos < len(rows) and rows[pos] == rank - 1:
        mine = np.flatnonzero(inc.row == pos)
        mine = mine[np.argsort(inc.step[mine])]
        prev = ps.empty_tier.name
        for i in mine:
            e["steps"].append({
                "from_tier": prev,
                "to_tier": _tier_name_of_option(ps, int(inc.option[i])),
                "extra_bytes": int(inc.d_bytes[i]),
                "weighted_listens_per_mb": float(inc.eff[i]) * 1e6,
                "budget_from": knapsack.budget_to_take(inc, int(i)),
            })
            prev = e["steps"][-1]["to_tier"]
    e["reason"] = _reason(e, ps)
    e["text"] = render(e)
    return e


def _reason(e: dict[str, Any], ps: PlanSettings) -> str:
    status = e["status"]
    if status == planner.ERROR_ZERO_DURATION:
        return ("the catalog gives it no duration and no file is held, so its size cannot be "
                "estimated; it is kept as metadata only")
    if status == planner.SKIPPED_DUPLICATE:
        return (f"it shares its ISRC with track {e['duplicate_of']}, which ranks higher and "
                "keeps the audio for both (one copy per ISRC)")
    if status == planner.SKIPPED_LOW:
        return (f"popularity 0 with a secondary priority of {e['secondary_priority']:.3f}, "
                f"below plan.min_secondary_priority = {ps.min_secondary_priority}")
    cutoff = e["cutoff_listens_per_mb"]
    steps = e["steps"]
    taken = [st for st in steps if ps.budget_bytes is None or st["budget_from"] <= ps.budget_bytes]
    if not taken:
        best = steps[0] if steps else None
        gain = best["weighted_listens_per_mb"] if best else 0.0
        tier = best["to_tier"] if best else "audio"
        return (f"keeping it as {tier} would save {gain:,.4g} weighted listens per MB, "
                f"below the budget's cut-off of {cutoff:,.4g}, so it is kept as metadata only")
    last = taken[-1]
    text = (f"the step from {last['from_tier']} to {last['to_tier']} saves "
            f"{last['weighted_listens_per_mb']:,.4g} weighted listens per MB")
    text += (", and the budget takes every step" if cutoff is None
             else f", above the budget's cut-off of {cutoff:,.4g}")
    if status == planner.DARK:
        text += (f"; its rights ({e['rights_status']}) are not distributable, so it is kept in "
                 "the dark archive and never enters a release phase")
    elif status == planner.MISSING_AUDIO:
        text += "; the archive holds no file for it yet (missing_audio)"
    return text


def render(e: dict[str, Any]) -> str:
    """The explanation of one track as a few plain lines."""
    who = f" by {e['artists']}" if e.get("artists") else ""
    isrc = f" (ISRC {e['isrc']})" if e.get("isrc") else ""
    lines = [f"Track {e['track_id']} \"{e['title']}\"{who}{isrc} in plan {e['plan_id']}:"]
    top = 100.0 * e["rank"] / max(e["tracks_total"], 1)
    lines.append(f"  ranks {e['rank']:,} of {e['tracks_total']:,} (top {top:.3g} %), "
                 f"popularity {e['popularity']}, secondary priority "
                 f"{(e['secondary_priority'] or 0.0):.3f}.")
    how = "from the catalog" if e["listens_real"] else "estimated from popularity"
    lines.append(f"  listens: {e['listens_est']:,.0f} ({how}), "
                 f"{100.0 * e['listens_share']:.3g} % of all listens.")
    size = f", {units.format_size(e['est_bytes'])}" if e["est_bytes"] else ""
    lines.append(f"  tier: {e['tier']} ({e['status']}{size}) because {e['reason']}.")
    if e["phase"] is not None:
        lines.append(f"  release phase {e['phase']} of {e['phases_total']}.")
    elif e["tier"] != "metadata_only" and not e["distributable"]:
        lines.append("  not in any release phase (dark archive).")
    budget = e["budget_bytes"]
    for st in e["steps"]:
        need = units.format_size(st["budget_from"])
        if budget is not None and st["budget_from"] <= budget:
            lines.append(f"  below a budget of {need} it would drop from {st['to_tier']} "
                         f"to {st['from_tier']}.")
        else:
            lines.append(f"  from a budget of {need} it would move from {st['from_tier']} "
                         f"to {st['to_tier']}.")
    if not e["steps"] and e["status"] in planner.NOT_ELIGIBLE:
        lines.append("  no budget changes its tier.")
    return "\n".join(lines)
