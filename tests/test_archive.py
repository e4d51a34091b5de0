"""Opening an archive: migrated once, and nothing written when it is up to date."""

from __future__ import annotations

import os
from pathlib import Path

from soundkeep import archive, db


def test_opening_an_up_to_date_archive_writes_nothing(tmp_path: Path) -> None:
    """Any write (even DDL that changes nothing) makes DuckDB checkpoint the whole catalog on
    close: a command reading a 10 M-track catalog paid over a second for it."""
    archive.init(tmp_path / "a").close()
    path = tmp_path / "a" / "catalog.duckdb"
    wal = Path(f"{path}.wal")
    before = os.stat(path)
    with archive.open_archive(tmp_path / "a") as arch:
        assert arch.con.execute("SELECT sk_id('track', 'x', '1')").fetchall()[0][0] != 0
        assert not wal.exists()
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert not wal.exists()


def test_the_id_macro_is_made_again_when_missing(tmp_path: Path) -> None:
    """The stable-id macro is created with the catalog, and again should it be gone."""
    arch = archive.init(tmp_path / "a")
    first = arch.con.execute("SELECT sk_id('artist', 'ns', 'k')").fetchall()[0][0]
    arch.con.execute("DROP MACRO sk_id")
    arch.close()
    with archive.open_archive(tmp_path / "a") as again:
        assert again.con.execute("SELECT sk_id('artist', 'ns', 'k')").fetchall()[0][0] == first
        assert db.get_meta(again.con, "id_macro") == db.ID_MACRO
