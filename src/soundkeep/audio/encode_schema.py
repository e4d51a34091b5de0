"""The encode step's tables (journal and outputs); each schema change is a new migration."""

from __future__ import annotations

STAGE = "encode"

MIGRATIONS: list[tuple[int, str]] = []
