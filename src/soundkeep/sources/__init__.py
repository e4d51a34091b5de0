"""Importers for open data formats, chosen with `soundkeep ingest --format NAME`.

Each takes (archive, paths, on_progress) and returns one IngestResult per file, like the
generic ingest, whose readers, validation, quarantine and transactions they reuse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from soundkeep.sources.beets import ingest_beets
from soundkeep.sources.listenbrainz import ingest_listens
from soundkeep.sources.musicbrainz import ingest_musicbrainz
from soundkeep.sources.tags import ingest_tags

IMPORTERS: dict[str, Callable[[Any, Iterable[Path], Any], list[Any]]] = {
    "musicbrainz": ingest_musicbrainz,
    "listenbrainz": ingest_listens,
    "beets": ingest_beets,
    "tags": ingest_tags,
}
