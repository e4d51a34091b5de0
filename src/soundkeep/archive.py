"""An archive is a directory: settings, the catalog database, the store, quarantine."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import duckdb

from soundkeep import config, db
from soundkeep.errors import ArchiveError

CATALOG_NAME = "catalog.duckdb"
ENV_VAR = "SOUNDKEEP_ARCHIVE"


def default_path() -> Path:
    """The archive named by SOUNDKEEP_ARCHIVE, else the current directory."""
    return Path(os.environ.get(ENV_VAR) or ".")


@dataclass
class Archive:
    """An open archive: its root, its settings and one catalog connection (one writer)."""

    root: Path
    settings: config.Settings
    _con: duckdb.DuckDBPyConnection | None = field(default=None, repr=False)
    read_only: bool = False

    @property
    def catalog_path(self) -> Path:
        """Where the catalog database lives."""
        return self.root / CATALOG_NAME

    @property
    def store_dir(self) -> Path:
        """The content-addressed audio store."""
        return self.root / "store"

    @property
    def quarantine_dir(self) -> Path:
        """Where refused inputs are recorded."""
        return self.root / "quarantine"

    @property
    def releases_dir(self) -> Path:
        """Bundles, torrents, manifests and metadata releases."""
        return self.root / "releases"

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The catalog connection, opened (and migrated) on first use."""
        if self._con is None:
            self._con = connect(self.catalog_path, self.settings, read_only=self.read_only)
            if not self.read_only:
                db.migrate(self._con)
                apply_rights_policy(self._con, self.settings)
        return self._con

    def close(self) -> None:
        """Close the catalog connection (checkpointing it)."""
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def connect(path: Path, settings: config.Settings, read_only: bool = False
            ) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB catalog with the archive's memory and thread limits."""
    threads = settings.typed("catalog.threads", int, 0) or (os.cpu_count() or 1)
    cfg = {
        "memory_limit": str(settings.get("catalog.memory_limit")),
        "threads": threads,
        "preserve_insertion_order": False,
    }
    try:
        con = duckdb.connect(str(path), read_only=read_only, config=cfg)
    except duckdb.Error as exc:
        raise ArchiveError(f"cannot open the catalog: {exc}".splitlines()[0],
                           file=str(path)) from None
    con.execute("SET temp_directory = ?", [str(path.parent / ".tmp")])
    return con


def init(root: Path) -> Archive:
    """Create an archive (idempotent): settings with documented defaults, catalog, quarantine."""
    root.mkdir(parents=True, exist_ok=True)
    cfg = root / config.CONFIG_NAME
    if not cfg.exists():
        tmp = cfg.with_suffix(".toml.tmp")
        tmp.write_text(config.default_text(), encoding="utf-8")
        tmp.replace(cfg)
    (root / "quarantine").mkdir(exist_ok=True)
    arch = open_archive(root)
    _ = arch.con  # creates and migrates the catalog
    return arch


def open_archive(root: Path | None = None, read_only: bool = False) -> Archive:
    """Open an existing archive directory; a directory that is not one is a clear error."""
    root = Path(root) if root is not None else default_path()
    cfg = root / config.CONFIG_NAME
    if not cfg.exists():
        raise ArchiveError("not a soundkeep archive (no soundkeep.toml)", file=str(root),
                           expected="a directory made by 'soundkeep init'")
    return Archive(root=root, settings=config.load(cfg), read_only=read_only)


def rights_sql(settings: config.Settings, column: str = "rights_status") -> str:
    """The rights policy as a SQL boolean expression over a rights_status column."""
    terms = []
    for pat in settings.distributable_patterns():
        op = "GLOB" if any(c in pat for c in "*?[") else "="
        terms.append(f"{column} {op} {db.literal(pat)}")
    return "(" + (" OR ".join(terms) or "FALSE") + ")"


def apply_rights_policy(con: duckdb.DuckDBPyConnection, settings: config.Settings) -> None:
    """Recompute tracks.distributable when the policy in soundkeep.toml changed."""
    expr = rights_sql(settings)
    if db.get_meta(con, "rights_policy") == expr:
        return
    with db.transaction(con):
        con.execute(f"UPDATE tracks SET distributable = {expr} "
                    f"WHERE distributable IS DISTINCT FROM {expr}")
        db.set_meta(con, "rights_policy", expr)
