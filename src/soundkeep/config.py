"""soundkeep.toml: the defaults (one file, defaults.toml) merged with an archive's own settings."""

from __future__ import annotations

import copy
import fnmatch
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from soundkeep.errors import ConfigError

CONFIG_NAME = "soundkeep.toml"


def default_text() -> str:
    """The documented default settings, as written into a new archive."""
    return resources.files("soundkeep").joinpath("defaults.toml").read_text(encoding="utf-8")


def _merge(base: dict[str, Any], over: dict[str, Any], where: str, path: Path) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        name = f"{where}.{key}" if where else key
        if key not in base:
            # Tier tables are open-ended: a user may declare a new tier.
            if where.startswith("tiers"):
                out[key] = value
                continue
            raise ConfigError("unknown setting", file=str(path), field=name,
                              expected="one of " + ", ".join(sorted(base)))
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ConfigError("expected a table", file=str(path), field=name, value=value)
            out[key] = _merge(base[key], value, name, path)
        else:
            out[key] = value
    return out


@dataclass
class Settings:
    """The merged settings of one archive; each stage reads and validates its own section."""

    data: dict[str, Any]
    path: Path | None = None

    def section(self, name: str) -> dict[str, Any]:
        """One top-level table, e.g. settings.section('plan')."""
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError("expected a table", file=str(self.path), field=name)
        return value

    def get(self, dotted: str) -> Any:
        """A value by dotted name, e.g. settings.get('ingest.batch_rows')."""
        node: Any = self.data
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                raise ConfigError("unknown setting", file=str(self.path), field=dotted)
            node = node[part]
        return node

    def typed(self, dotted: str, kind: type, minimum: float | None = None) -> Any:
        """A value checked for type (and lower bound); a wrong one is a one-line ConfigError."""
        value = self.get(dotted)
        ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise ConfigError("wrong type", file=str(self.path), field=dotted, value=value,
                              expected=kind.__name__)
        if minimum is not None and value < minimum:
            raise ConfigError("too small", file=str(self.path), field=dotted, value=value,
                              expected=f">= {minimum}")
        return value

    def distributable_patterns(self) -> list[str]:
        """The rights policy: rights_status patterns that may be distributed."""
        pats = self.get("rights.distributable")
        if not isinstance(pats, list) or not all(isinstance(p, str) for p in pats):
            raise ConfigError("expected a list of strings", file=str(self.path),
                              field="rights.distributable", value=pats)
        return pats

    def is_distributable(self, rights_status: str) -> bool:
        """Apply the rights policy to one status (the catalog applies it in SQL)."""
        return any(fnmatch.fnmatchcase(rights_status, p) for p in self.distributable_patterns())


def load(path: Path | None) -> Settings:
    """Read an archive's soundkeep.toml over the defaults; refuse unknown keys and bad TOML."""
    base = tomllib.loads(default_text())
    if path is None or not path.exists():
        return Settings(base, path)
    try:
        user = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=str(path)) from None
    return Settings(_merge(base, user, "", path), path)
