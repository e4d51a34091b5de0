"""Mapping files: which source column (or nested JSON path) feeds which catalog field.

    # mapping.toml
    entity = "tracks"          # tracks | releases | artists
    source = "my-export"       # the namespace of the source's own ids (stable soundkeep ids)
    list_separator = ";"       # how a text column holds several artists or genres
    table = "songs"            # for SQLite: which table
    query = "SELECT rowid AS _row, * FROM songs WHERE kind = 'music'"   # or a query
    [fields]
    title = "name"                      # a column
    isrc = "external_ids.isrc"          # a nested path (JSON, or a Parquet struct)
    artists = "artists[*].name"         # every element of a JSON array
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from soundkeep.catalog.fields import ENTITIES, ENTITY_ALIASES
from soundkeep.errors import ConfigError

# A column name (spaces and other characters allowed: exports name columns "Track Name" or
# "Length (ms)"), or a path of names with [index] or [*] steps.
_PATH = re.compile(r"^[^.\[\]]+(\[(\d+|\*)\])?(\.[^.\[\]]+(\[(\d+|\*)\])?)*$")


@dataclass
class Mapping:
    """What a mapping file says; every part optional."""

    entity: str | None = None
    source: str | None = None
    list_separator: str = ";"
    table: str | None = None
    query: str | None = None  # SQLite: a SELECT (with a `_row` column) instead of a table
    fields: dict[str, str] = field(default_factory=dict)


def normalize_entity(name: str, where: str = "entity") -> str:
    """'track', 'albums', ... -> the canonical entity name; a clear error otherwise."""
    canonical = ENTITY_ALIASES.get(name.strip().lower())
    if canonical is None:
        raise ConfigError("unknown entity", field=where, value=name,
                          expected="tracks, releases or artists")
    return canonical


def load_mapping(path: Path) -> Mapping:
    """Read and check a mapping file; every mistake is named with its key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not a readable TOML mapping: {exc}", file=str(path)) from None
    known = {"entity", "source", "list_separator", "table", "query", "fields"}
    for key in data:
        if key not in known:
            raise ConfigError("unknown key", file=str(path), field=key,
                              expected="one of " + ", ".join(sorted(known)))
    m = Mapping()
    if "entity" in data:
        m.entity = normalize_entity(str(data["entity"]), "entity")
    for key in ("source", "list_separator", "table", "query"):
        if key in data:
            if not isinstance(data[key], str) or not data[key]:
                raise ConfigError("expected a non-empty string", file=str(path), field=key,
                                  value=data[key])
            setattr(m, key, data[key])
    fields = data.get("fields", {})
    if not isinstance(fields, dict):
        raise ConfigError("expected a table", file=str(path), field="fields")
    allowed = {f.name for fs in ENTITIES.values() for f in fs}
    if m.entity:
        allowed = {f.name for f in ENTITIES[m.entity]}
    for name, src in fields.items():
        if name not in allowed:
            raise ConfigError("not a catalog field", file=str(path), field=f"fields.{name}",
                              expected="one of " + ", ".join(sorted(allowed)))
        if not isinstance(src, str) or not _PATH.match(src):
            raise ConfigError("not a column name or path", file=str(path),
                              field=f"fields.{name}", value=src,
                              expected='a column like "name", or a path like "a.b[0].c"')
        m.fields[name] = src
    return m
