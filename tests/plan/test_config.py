"""Bad plan settings are refused with one clear error naming the setting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import settings, write_settings

from soundkeep import archive
from soundkeep.errors import ConfigError
from soundkeep.plan.config import load_plan_settings, plan_memory_limit, settings_from_dict


@pytest.mark.parametrize(("overrides", "field", "words"), [
    ({"plan.budget": "-5TB"}, "plan.budget", "negative"),
    ({"plan.budget": -1}, "plan.budget", "negative"),
    ({"plan.budget": "lots"}, "plan.budget", "not a size"),
    ({"plan.tiers": ["original", "platinum", "metadata_only"]}, "plan.tiers", "unknown tier"),
    ({"plan.tiers": ["original", "reencode"]}, "plan.tiers", "keep no audio"),
    ({"plan.tiers": ["original", "original", "metadata_only"]}, "plan.tiers", "twice"),
    ({"tiers.reencode.codec": "wma"}, "tiers.reencode.codec", "unknown codec"),
    ({"tiers.reencode.weight": 1.5}, "tiers.reencode.weight", "out of range"),
    ({"tiers.reencode.weight": "high"}, "tiers.reencode.weight", "wrong type"),
    ({"tiers.reencode.bitrate_kbps": 0}, "tiers.reencode.bitrate_kbps", "out of range"),
    ({"tiers.metadata_only.weight": 0.5}, "tiers.metadata_only.weight", "weight 0"),
    ({"plan.isrc_dedupe_max_popularity": 200}, "plan.isrc_dedupe_max_popularity", "range"),
    ({"pack.bundle_size": "0GB"}, "pack.bundle_size", "positive"),
    ({"plan.keep_plans": 0}, "plan.keep_plans", "too small"),
    ({"plan.tiers": [f"t{i}" for i in range(101)]}, "plan.tiers", "too many tiers"),
])
def test_bad_settings_are_refused(overrides: dict, field: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_plan_settings(settings(overrides))
    assert err.value.field == field
    assert words in err.value.one_line()


@pytest.mark.parametrize(("value", "words"), [("lots", "not a size"), ("1MB", "too small")])
def test_a_bad_plan_memory_limit_is_refused(value: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        plan_memory_limit(settings({"plan.memory_limit": value}))
    assert err.value.field == "plan.memory_limit"
    assert words in err.value.one_line()
    assert plan_memory_limit(settings({"plan.memory_limit": "1.5GiB"})) == 3 * 2**29


def test_negative_budget_option_is_refused() -> None:
    with pytest.raises(ConfigError) as err:
        load_plan_settings(settings(), budget="-300TB")
    assert err.value.field == "--budget"


def test_a_declared_tier_can_be_used() -> None:
    ps = load_plan_settings(settings({
        "tiers.low": {"codec": "opus", "bitrate_kbps": 32, "weight": 0.7},
        "plan.tiers": ["original", "reencode", "low", "metadata_only"],
    }))
    assert [t.name for t in ps.tiers] == ["original", "reencode", "low", "metadata_only"]
    assert ps.tier("low").status == "planned_low"


def test_unlimited_budget_and_round_trip() -> None:
    ps = load_plan_settings(settings({"plan.budget": "unlimited"}))
    assert ps.budget_bytes is None
    assert settings_from_dict(ps.as_dict()) == ps


def test_cli_reports_a_bad_setting_in_one_line(tmp_path: Path) -> None:
    root = tmp_path / "arch"
    archive.init(root).close()
    write_settings(root, '[tiers.reencode]\ncodec = "wma"\n')
    proc = subprocess.run([sys.executable, "-c", "from soundkeep.cli import main; main()",
                           "plan", "-a", str(root)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown codec" in lines[0] and "tiers.reencode.codec" in lines[0]
    assert "Traceback" not in proc.stderr
