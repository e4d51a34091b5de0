"""The plan's settings, read from soundkeep.toml and validated into plain frozen data."""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import asdict, dataclass
from typing import Any

from soundkeep import units
from soundkeep.config import Settings
from soundkeep.errors import ConfigError, SoundkeepError

# What a tier may do with a track's audio. "original" keeps the file as it is, "none" keeps
# no audio; the others are codecs the encode step can write.
AUDIO_CODECS = ("opus", "vorbis", "aac", "mp3", "flac")
CODECS = ("original", "none", *AUDIO_CODECS)
_TIER_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
UNLIMITED = ("unlimited", "none", "inf")


# A plan stores each track's tier and status as a small code (an int8 in numpy).
MAX_TIERS = 100


@dataclass(frozen=True)
class Tier:
    """One quality tier: what happens to a track's audio, its bitrate and its quality weight."""

    name: str
    codec: str
    bitrate_kbps: float | None
    weight: float

    @property
    def has_audio(self) -> bool:
        """Whether a track at this tier keeps audio."""
        return self.codec != "none"

    @property
    def status(self) -> str:
        """The status of a kept, distributable, held (or not yet scanned) track at this tier."""
        return "metadata_only" if not self.has_audio else f"planned_{self.name}"


@dataclass(frozen=True)
class ListenModel:
    """Popularity -> estimated listens: log-linear between calibration points."""

    points: tuple[tuple[float, float], ...]
    zero_decades: float


@dataclass(frozen=True)
class Secondary:
    """The secondary priority formula (reference design), with its weights."""

    artist_popularity: float
    release_popularity: float
    followers_per_decade: float
    followers_cap: float

    @property
    def maximum(self) -> float:
        """The largest value the formula can take (popularities at 100, followers at the cap)."""
        return (100 * self.artist_popularity + 100 * self.release_popularity
                + self.followers_per_decade * math.log10(self.followers_cap + 1))


@dataclass(frozen=True)
class PlanSettings:
    """Everything a plan depends on besides the catalog and holdings."""

    budget_bytes: int | None          # None: unlimited
    tiers: tuple[Tier, ...]
    listens: ListenModel
    secondary: Secondary
    min_secondary_priority: float
    isrc_dedupe_max_popularity: int
    bundle_bytes: int
    keep_plans: int

    def as_dict(self) -> dict[str, Any]:
        """Plain data, stored with each plan so plans can be compared."""
        return asdict(self)

    def tier(self, name: str) -> Tier:
        """A tier by name."""
        for t in self.tiers:
            if t.name == name:
                return t
        raise ConfigError("unknown tier", field="plan.tiers", value=name,
                          expected="one of " + ", ".join(t.name for t in self.tiers))

    @property
    def empty_tier(self) -> Tier:
        """The tier that keeps no audio (the fallback of every track)."""
        return next(t for t in self.tiers if not t.has_audio)


def parse_budget(value: object, field: str = "plan.budget") -> int | None:
    """A budget in bytes from '300TB', a number, or 'unlimited' (None)."""
    if isinstance(value, str) and value.strip().lower() in UNLIMITED:
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ConfigError("not a budget", field=field, value=value,
                          expected='a size such as "300TB", or "unlimited"')
    return units.parse_size(value, field=field)


def _number(settings: Settings, key: str, lo: float | None = None,
            hi: float | None = None) -> float:
    value = settings.typed(key, float)
    if not math.isfinite(value) or (lo is not None and value < lo) or (
            hi is not None and value > hi):
        rng = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
        raise ConfigError("out of range", file=str(settings.path), field=key, value=value,
                          expected=f"a number {rng}")
    return float(value)


def _tier(settings: Settings, name: str) -> Tier:
    where = f"tiers.{name}"
    if not _TIER_NAME.match(name):
        raise ConfigError("bad tier name", file=str(settings.path), field=where, value=name,
                          expected="lower-case letters, digits and _")
    table = settings.section("tiers").get(name)
    if not isinstance(table, dict):
        known = ", ".join(sorted(settings.section("tiers")))
        raise ConfigError("unknown tier", file=str(settings.path), field="plan.tiers",
                          value=name, expected=f"a [tiers.NAME] table: one of {known}")
    codec = table.get("codec")
    if codec not in CODECS:
        raise ConfigError("unknown codec", file=str(settings.path), field=f"{where}.codec",
                          value=codec, expected="one of " + ", ".join(CODECS))
    weight = _number(settings, f"{where}.weight", 0.0, 1.0)
    bitrate: float | None = None
    if codec != "none":
        if "bitrate_kbps" not in table:
            raise ConfigError("missing setting", file=str(settings.path),
                              field=f"{where}.bitrate_kbps",
                              expected="a bitrate in kbit/s (for 'original': the bitrate "
                                       "assumed when no file is held)")
        bitrate = _number(settings, f"{where}.bitrate_kbps", 1.0, 100_000.0)
    elif weight > 0:
        # A weight on the empty tier would make every track's listens count as "kept".
        raise ConfigError("a tier without audio must have weight 0", file=str(settings.path),
                          field=f"{where}.weight", value=weight, expected="0")
    return Tier(name=name, codec=str(codec), bitrate_kbps=bitrate, weight=weight)


def _points(settings: Settings) -> tuple[tuple[float, float], ...]:
    raw = settings.get("listens.points")
    where = "listens.points"
    ok = isinstance(raw, list) and len(raw) >= 2 and all(
        isinstance(p, list) and len(p) == 2
        and all(isinstance(x, int | float) and not isinstance(x, bool) for x in p) for p in raw)
    if not ok:
        raise ConfigError("expected a list of [popularity, listens] pairs",
                          file=str(settings.path), field=where, value=raw,
                          expected="at least two pairs, e.g. [[1, 60], [100, 3000000000]]")
    pts = tuple((float(p), float(n)) for p, n in raw)
    pops = [p for p, _ in pts]
    if any(p < 1 or p > 100 for p in pops) or any(b <= a for a, b in itertools.pairwise(pops)):
        raise ConfigError("popularities must rise strictly within 1..100",
                          file=str(settings.path), field=where, value=pops)
    counts = [n for _, n in pts]
    if any(n <= 0 for n in counts) or any(b < a for a, b in itertools.pairwise(counts)):
        raise ConfigError("listens must be positive and must not fall as popularity rises",
                          file=str(settings.path), field=where, value=counts)
    return pts


def load_plan_settings(settings: Settings, budget: str | None = None) -> PlanSettings:
    """Read and validate [listens], [plan], [tiers.*] and [pack]; budget overrides plan.budget."""
    budget_bytes = (parse_budget(budget, "--budget") if budget is not None
                    else parse_budget(settings.get("plan.budget")))
    names = settings.get("plan.tiers")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ConfigError("expected a list of tier names", file=str(settings.path),
                          field="plan.tiers", value=names)
    if len(set(names)) != len(names):
        raise ConfigError("a tier is listed twice", file=str(settings.path),
                          field="plan.tiers", value=names)
    if len(names) > MAX_TIERS:  # a plan stores tiers and statuses as one-byte codes
        raise ConfigError("too many tiers", file=str(settings.path), field="plan.tiers",
                          value=len(names), expected=f"at most {MAX_TIERS}")
    tiers = tuple(_tier(settings, n) for n in names)
    empty = [t.name for t in tiers if not t.has_audio]
    if len(empty) != 1:
        raise ConfigError("exactly one tier must keep no audio (codec \"none\")",
                          file=str(settings.path), field="plan.tiers", value=names,
                          expected='e.g. "metadata_only"')
    secondary = Secondary(
        artist_popularity=_number(settings, "plan.secondary.artist_popularity", 0.0),
        release_popularity=_number(settings, "plan.secondary.release_popularity", 0.0),
        followers_per_decade=_number(settings, "plan.secondary.followers_per_decade", 0.0),
        followers_cap=_number(settings, "plan.secondary.followers_cap", 1.0),
    )
    dedupe = settings.typed("plan.isrc_dedupe_max_popularity", int)
    if not -1 <= dedupe <= 100:
        raise ConfigError("out of range", file=str(settings.path),
                          field="plan.isrc_dedupe_max_popularity", value=dedupe,
                          expected="-1 (off) .. 100 (every row)")
    bundle = units.parse_size(settings.get("pack.bundle_size"), field="pack.bundle_size")
    if bundle <= 0:
        raise ConfigError("bundle size must be positive", file=str(settings.path),
                          field="pack.bundle_size", value=bundle, expected="e.g. 300GB")
    return PlanSettings(
        budget_bytes=budget_bytes,
        tiers=tiers,
        listens=ListenModel(points=_points(settings),
                            zero_decades=_number(settings, "listens.zero_decades", 0.0, 12.0)),
        secondary=secondary,
        min_secondary_priority=_number(settings, "plan.min_secondary_priority", 0.0),
        isrc_dedupe_max_popularity=dedupe,
        bundle_bytes=bundle,
        keep_plans=settings.typed("plan.keep_plans", int, 1),
    )


def plan_memory_limit(settings: Settings) -> int:
    """plan.memory_limit in bytes: DuckDB's memory limit while planning."""
    limit = units.parse_size(settings.get("plan.memory_limit"), field="plan.memory_limit")
    if limit < 2**27:
        raise ConfigError("memory limit too small", file=str(settings.path),
                          field="plan.memory_limit", value=settings.get("plan.memory_limit"),
                          expected="at least 128MB, e.g. 8GB")
    return limit


def settings_from_dict(data: dict[str, Any]) -> PlanSettings:
    """Rebuild the settings stored with a plan (the inverse of PlanSettings.as_dict)."""
    return PlanSettings(
        budget_bytes=data["budget_bytes"],
        tiers=tuple(Tier(**t) for t in data["tiers"]),
        listens=ListenModel(points=tuple((float(p), float(n))
                                         for p, n in data["listens"]["points"]),
                            zero_decades=data["listens"]["zero_decades"]),
        secondary=Secondary(**data["secondary"]),
        min_secondary_priority=data["min_secondary_priority"],
        isrc_dedupe_max_popularity=data["isrc_dedupe_max_popularity"],
        bundle_bytes=data["bundle_bytes"],
        keep_plans=data["keep_plans"],
    )


class PlanError(SoundkeepError):
    """A plan request that cannot be met (no plan yet, unknown track, unknown plan)."""
