"""Why a track got its place in a plan, in plain words, and what budget would change it.

The plan's own inputs are stored with it (listens, duration, held size, status, settings), so
the knapsack offers are rebuilt exactly as the plan made them: for each step on the track's
hull, the budget from which the greedy takes it is the bytes of every offer before it, added
up over the stored plan in chunks of ranks.
"""

from __future__ import annotations

import re
from typing import Any

import duckdb
import numpy as np

from soundkeep import units
from soundkeep.plan import budget as knapsack
from soundkeep.plan import planner, store
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


# Rows of the stored plan per chunk when adding up the offers ordered before a track's.
CHUNK_ROWS = 1 << 20


def _extra_listens(con: duckdb.DuckDBPyConnection, plan_id: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Rows standing for ISRC duplicates (ranks, sorted) and the duplicates' listens, summed
    in rank order as the planner did."""
    got = con.execute("""
        SELECT d.rank AS dup, r.rank AS rep, d.listens_est AS listens
        FROM plan_tracks d JOIN plan_tracks r
          ON r.plan_id = d.plan_id AND r.track_id = d.duplicate_of
        WHERE d.plan_id = ? AND d.duplicate_of IS NOT NULL ORDER BY d.rank""",
                      [plan_id]).fetchnumpy()
    rep_rank, inv = np.unique(np.asarray(got["rep"], dtype=np.int64), return_inverse=True)
    extra = np.bincount(inv, weights=np.asarray(got["listens"], dtype=np.float64),
                        minlength=rep_rank.size)
    return rep_rank, extra


def _chunk_offers(con: duckdb.DuckDBPyConnection, rec: PlanRecord, where: str,
                  reps: tuple[np.ndarray, np.ndarray]
                  ) -> tuple[np.ndarray, knapsack.Increments]:
    """Rebuild the knapsack offers of some rows of the stored plan: (their ranks, increments)."""
    ps = rec.settings
    t = read_arrow(con, f"""
        SELECT rank, listens_est, duration_ms, coalesce(held_bytes, 0) AS held_bytes, status
        FROM plan_tracks WHERE plan_id = {rec.plan_id} AND {where}""")
    by = np.argsort(np.asarray(t.column("rank").to_numpy(), dtype=np.int64))
    rank = np.asarray(t.column("rank").to_numpy(), dtype=np.int64)[by]
    listens = np.asarray(t.column("listens_est").fill_null(0).to_numpy(), dtype=np.float64)[by]
    duration = np.asarray(t.column("duration_ms").fill_null(0).to_numpy(), dtype=np.int64)[by]
    held = np.asarray(t.column("held_bytes").to_numpy(), dtype=np.int64)[by]
    status = np.asarray(t.column("status").to_numpy(zero_copy_only=False))[by]
    eligible = ~np.isin(status, list(planner.NOT_ELIGIBLE))
    rep_rank, extra = reps
    if rep_rank.size and rank.size:
        pos = np.minimum(np.searchsorted(rep_rank, rank), rep_rank.size - 1)
        hit = np.flatnonzero(rep_rank[pos] == rank)
        listens[hit] = listens[hit] + extra[pos[hit]]
    rows = np.flatnonzero(eligible)
    inc, _ = planner.offers(ps, duration[rows], held[rows], listens[rows], rank[rows])
    return rank[rows], inc


def _steps(con: duckdb.DuckDBPyConnection, rec: PlanRecord, ranks: list[int]
           ) -> dict[int, list[dict[str, Any]]]:
    """Each track's hull steps with the budget from which each is taken.

    That budget is the bytes of every offer ordered before the step, and its own: one pass
    over the stored plan in chunks of ranks, so memory does not grow with the catalog.
    """
    ps = rec.settings
    reps = _extra_listens(con, rec.plan_id)
    mine_rank, mine = _chunk_offers(con, rec, f"rank IN ({', '.join(map(str, ranks))})", reps)
    own = np.arange(len(mine.eff))
    eff, key = mine.eff[own], mine.key(own)
    need = np.zeros(len(own), dtype=np.int64)
    n = int(con.execute("SELECT coalesce(max(rank), 0) FROM plan_tracks WHERE plan_id = ?",
                        [rec.plan_id]).fetchall()[0][0])
    for lo in range(0, n, CHUNK_ROWS):
        _, inc = _chunk_offers(con, rec, f"rank > {lo} AND rank <= {lo + CHUNK_ROWS}", reps)
        if not len(inc.eff):
            continue
        for j in range(len(own)):  # a step or two: one pass each, no sort
            need[j] += knapsack.bytes_up_to(inc, float(eff[j]), int(key[j]))
    out: dict[int, list[dict[str, Any]]] = {r: [] for r in ranks}
    for j in np.lexsort((mine.step, mine.row)):
        r = int(mine_rank[mine.row[j]])
        prev = out[r][-1]["to_tier"] if out[r] else ps.empty_tier.name
        out[r].append({
            "from_tier": prev,
            "to_tier": _tier_name_of_option(ps, int(mine.option[j])),
            "extra_bytes": int(mine.d_bytes[j]),
            "weighted_listens_per_mb": float(mine.eff[j]) * 1e6,
            "budget_from": int(need[j]),
        })
    return out


def _track_facts(con: duckdb.DuckDBPyConnection, track_id: int, plan_id: int
                 ) -> dict[str, Any]:
    row = con.execute("""
        SELECT p.rank, p.listens_est, t.popularity, p.priority, p.tier, p.status, p.est_bytes,
               p.phase, p.duplicate_of, t.distributable, t.listens IS NOT NULL, p.file_key,
               t.title, t.isrc, t.rights_status,
               (SELECT string_agg(a.name, ', ' ORDER BY x.position) FROM track_artists x
                  JOIN artists a ON a.artist_id = x.artist_id WHERE x.track_id = p.track_id)
        FROM plan_tracks p LEFT JOIN tracks t ON t.track_id = p.track_id
        WHERE p.plan_id = ? AND p.track_id = ?""", [plan_id, track_id]).fetchall()[0]
    keys = ["rank", "listens_est", "popularity", "priority", "tier", "status", "est_bytes",
            "phase", "duplicate_of", "distributable", "listens_real", "file_key", "title",
            "isrc", "rights_status", "artists"]
    facts = dict(zip(keys, row, strict=True))
    facts["sha256"] = None
    if facts["file_key"] is not None:
        chosen = store.chosen_file_sql("(SELECT ?::BIGINT AS track_id, ?::UBIGINT AS file_key)")
        found = con.execute(chosen, [track_id, facts["file_key"]]).fetchall()
        facts["sha256"] = found[0][1] if found else None
    return facts


def explain(con: duckdb.DuckDBPyConnection, key: str, plan_id: int | None = None
            ) -> list[dict[str, Any]]:
    """Explain every track matching key (track_id or ISRC) in a plan (default: the newest)."""
    rec = get_plan(con, plan_id)
    ids = find_tracks(con, key, rec.plan_id)
    facts = [_track_facts(con, track_id, rec.plan_id) for track_id in ids]
    steps = _steps(con, rec, [int(f["rank"]) for f in facts])
    out = []
    for track_id, f in zip(ids, facts, strict=True):
        out.append(_explain_one(rec, f, steps[int(f["rank"])], track_id))
    return out


def _tier_name_of_option(ps: PlanSettings, option: int) -> str:
    return ps.empty_tier.name if option < 0 else planner.audio_tiers(ps)[option].name


def _explain_one(rec: PlanRecord, f: dict[str, Any], steps: list[dict[str, Any]],
                 track_id: int) -> dict[str, Any]:
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
        "held_file_key": None if f["file_key"] is None else f"{int(f['file_key']):016x}",
        "budget_bytes": ps.budget_bytes,
        "cutoff_listens_per_mb": s.get("cutoff_listens_per_mb"),
        "steps": steps,
    }
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
