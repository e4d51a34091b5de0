"""The plan commands as a user runs them: JSON keys, the chart, diff, errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from soundkeep.cli import app

runner = CliRunner()


def _run(*args: str) -> dict:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def test_plan_coverage_explain_diff(make_archive, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    arch = make_archive(3000, 8)
    root = str(arch.root)
    arch.close()
    plan = _run("plan", "-a", root, "--budget", "3GB", "--json")
    assert plan["plan_id"] == 1 and not plan["reused"]
    assert sum(plan["counts_by_status"].values()) == 3000
    assert plan["phases"] and {"phase", "tracks", "bytes"} <= set(plan["phases"][0])
    assert plan["bytes_planned"] <= 3 * 10**9

    png = tmp_path / "coverage.png"
    cov = _run("coverage", "-a", root, "--json", "--png", str(png))
    assert 0 < cov["tracks_kept_share"] < 1 and 0 < cov["listens_kept_share"] <= 1
    assert cov["bytes_kept"] == plan["bytes_planned"] and cov["budget_bytes"] == 3 * 10**9
    assert set(cov["by_tier"]) == {"original", "reencode", "metadata_only"}
    assert {"tracks", "bytes"} <= set(cov["by_tier"]["original"])
    assert cov["by_genre"] and cov["curve"][-1] == [1.0, 1.0]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    again = _run("plan", "-a", root, "--budget", "3GB", "--json")
    assert again["reused"] and again["plan_id"] == 1
    _run("plan", "-a", root, "--budget", "1GB", "--json")
    d = _run("plan", "diff", "-a", root, "--json")
    assert (d["a"], d["b"]) == (1, 2) and d["same_inputs"]
    assert {"setting": "budget_bytes", "a": 3 * 10**9, "b": 10**9} in d["settings_changed"]
    assert d["tracks_changed_tier"] > 0


def test_human_output_and_explain(make_archive) -> None:  # type: ignore[no-untyped-def]
    arch = make_archive(1000, 3)
    root = str(arch.root)
    arch.close()
    out = runner.invoke(app, ["plan", "-a", root, "--budget", "unlimited"])
    assert out.exit_code == 0 and "kept audio for" in out.output
    import duckdb

    with duckdb.connect(str(arch.catalog_path), read_only=True) as con:
        track = int(con.execute("SELECT track_id FROM current_plan WHERE rank = 1"
                                ).fetchall()[0][0])
    e = runner.invoke(app, ["plan", "explain", "-a", root, str(track)])
    assert e.exit_code == 0 and f"Track {track}" in e.output and "ranks 1 of 1,000" in e.output
    ej = _run("plan", "explain", "-a", root, str(track), "--json")
    assert ej["rank"] == 1 and ej["tier"] == "original"
    cov = runner.invoke(app, ["coverage", "-a", root])
    assert cov.exit_code == 0 and "of listens" in cov.output
