"""Compare two stored plans: settings changed, counts by status, tracks that changed tier."""

from __future__ import annotations

from typing import Any

import duckdb

from soundkeep.plan.config import PlanError
from soundkeep.plan.store import get_plan, plan_ids


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(data, list) and data and all(isinstance(x, dict) and "name" in x
                                                for x in data):
        out = {}
        for x in data:
            out.update(_flat({k: v for k, v in x.items() if k != "name"},
                             f"{prefix}.{x['name']}"))
        return out
    return {prefix: data}


def diff(con: duckdb.DuckDBPyConnection, a: int | None = None, b: int | None = None
         ) -> dict[str, Any]:
    """Differences from plan a to plan b (default: the two newest plans)."""
    ids = plan_ids(con)
    if b is None:
        if not ids:
            raise PlanError("no plan yet", expected="run 'soundkeep plan' first")
        b = ids[-1] if a is None or a != ids[-1] else None
    if a is None:
        older = [i for i in ids if b is not None and i < b]
        if not older:
            raise PlanError("nothing to compare with: only one plan is stored", field="plan",
                            value=b, expected="two plans (change a setting, plan again)")
        a = older[-1]
    if b is None:
        raise PlanError("give the plan to compare with", field="plan", value=a)
    ra, rb = get_plan(con, a), get_plan(con, b)
    fa, fb = _flat(ra.settings_dict), _flat(rb.settings_dict)
    settings = [{"setting": k, "a": fa.get(k), "b": fb.get(k)}
                for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]
    moves = con.execute("""
        SELECT coalesce(x.tier, '(absent)') AS tier_a, coalesce(y.tier, '(absent)') AS tier_b,
               count(*) AS tracks,
               sum(coalesce(y.est_bytes, 0) - coalesce(x.est_bytes, 0)) AS bytes_change
        FROM (SELECT track_id, tier, est_bytes FROM plan_tracks WHERE plan_id = ?) x
        FULL OUTER JOIN (SELECT track_id, tier, est_bytes FROM plan_tracks WHERE plan_id = ?) y
          ON x.track_id = y.track_id
        WHERE x.tier IS DISTINCT FROM y.tier
        GROUP BY ALL ORDER BY tracks DESC, tier_a, tier_b""", [a, b]).fetchall()
    sa, sb = ra.summary.get("counts_by_status", {}), rb.summary.get("counts_by_status", {})
    statuses = sorted(set(sa) | set(sb))
    keys = ["tracks_kept", "tracks_kept_share", "listens_kept_share", "bytes_planned",
            "budget_bytes"]
    return {
        "a": a, "b": b,
        "same_inputs": ra.fingerprint == rb.fingerprint,
        "settings_changed": settings,
        "figures": {k: {"a": ra.summary.get(k), "b": rb.summary.get(k)} for k in keys},
        "counts_by_status": {s: {"a": sa.get(s, 0), "b": sb.get(s, 0),
                                 "change": sb.get(s, 0) - sa.get(s, 0)} for s in statuses},
        "phases": {"a": len(ra.summary.get("phases", [])),
                   "b": len(rb.summary.get("phases", []))},
        "tier_changes": [{"from": x, "to": y, "tracks": int(n), "bytes_change": int(d or 0)}
                         for x, y, n, d in moves],
        "tracks_changed_tier": int(sum(int(m[2]) for m in moves)),
    }
