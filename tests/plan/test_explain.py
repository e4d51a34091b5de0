"""plan explain: plain words, and budgets that really change the track's tier."""

from __future__ import annotations

import pytest
from conftest import catalog_tables, insert_catalog, memory_catalog, settings

from soundkeep.plan.config import PlanError, load_plan_settings
from soundkeep.plan.explain import explain
from soundkeep.plan.planner import make_plan


def _tier(con, track_id: int) -> str:  # type: ignore[no-untyped-def]
    return con.execute("SELECT tier FROM current_plan WHERE track_id = ?",
                       [track_id]).fetchall()[0][0]


def _plan(con, budget: object) -> None:  # type: ignore[no-untyped-def]
    make_plan(con, load_plan_settings(settings({"plan.budget": budget})))


@pytest.fixture
def con():  # type: ignore[no-untyped-def]
    c = memory_catalog()
    insert_catalog(c, catalog_tables(3000, 21, isrc_dup_share=0.2))
    _plan(c, "2GB")
    yield c
    c.close()


def _pick(con, where: str) -> int:  # type: ignore[no-untyped-def]
    return int(con.execute(f"SELECT track_id FROM current_plan WHERE {where} "
                           "ORDER BY rank LIMIT 1 OFFSET 5").fetchall()[0][0])


def test_the_budget_thresholds_are_exact(con) -> None:  # type: ignore[no-untyped-def]
    for where in ("tier = 'original'", "tier = 'reencode'",
                  "status = 'metadata_only' AND rank < 1800"):
        track = _pick(con, where)
        (e,) = explain(con, str(track))
        before = e["tier"]
        assert e["steps"], where
        for step in e["steps"]:
            need = step["budget_from"]
            # At the threshold the track has reached this step's tier; one byte less, not.
            _plan(con, need)
            assert _tier(con, track) == step["to_tier"], (where, step)
            _plan(con, need - 1)
            assert _tier(con, track) == step["from_tier"], (where, step)
        _plan(con, "2GB")
        assert _tier(con, track) == before


def test_explain_says_rank_listens_tier_and_phase(con) -> None:  # type: ignore[no-untyped-def]
    track = _pick(con, "status = 'planned_original'")
    (e,) = explain(con, str(track))
    assert e["track_id"] == track and e["tier"] == "original"
    assert 0 < e["listens_share"] < 1 and e["phase"] >= 1
    text = e["text"]
    for words in (f"ranks {e['rank']:,} of 3,000", "listens:", "estimated from popularity",
                  "tier: original (planned_original", "release phase",
                  "it would drop from original to reencode"):
        assert words in text, words


def test_explain_skipped_and_dark_tracks(con) -> None:  # type: ignore[no-untyped-def]
    dup = _pick(con, "status = 'skipped_duplicate_isrc'")
    (e,) = explain(con, str(dup))
    assert "shares its ISRC with track" in e["text"] and "no budget changes" in e["text"]
    dark = _pick(con, "status = 'dark'")
    (d,) = explain(con, str(dark))
    assert "dark archive" in d["text"] and d["phase"] is None


def test_explain_by_isrc_lists_every_row(con) -> None:  # type: ignore[no-untyped-def]
    isrc, count = con.execute(
        "SELECT isrc, count(*) FROM tracks GROUP BY isrc HAVING count(*) > 1 "
        "ORDER BY isrc LIMIT 1").fetchall()[0]
    found = explain(con, isrc.lower())
    assert len(found) == count
    assert [e["rank"] for e in found] == sorted(e["rank"] for e in found)


@pytest.mark.parametrize("key", ["12345678901", "QZ9999999999", "not a track"])
def test_unknown_tracks_are_a_clear_error(con, key: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PlanError) as err:
        explain(con, key)
    assert err.value.field == "TRACK"


def test_no_plan_yet_is_a_clear_error() -> None:
    c = memory_catalog()
    with pytest.raises(PlanError, match="no plan yet"):
        explain(c, "1")


def test_thresholds_are_the_same_whatever_the_chunk_size(con, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from soundkeep.plan import explain as explain_mod

    tracks = [_pick(con, w) for w in ("tier = 'original'", "tier = 'reencode'",
                                      "status = 'metadata_only' AND rank < 1800")]
    whole = [explain(con, str(t))[0]["steps"] for t in tracks]
    monkeypatch.setattr(explain_mod, "CHUNK_ROWS", 37)
    chunked = [explain(con, str(t))[0]["steps"] for t in tracks]
    assert chunked == whole
    assert all(whole)
