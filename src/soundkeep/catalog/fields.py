"""The catalog fields each entity accepts, their kinds, limits and the column names they answer to.

This is the declarative part of ingest: a source column named like a field (or one of its
aliases) maps onto it with no mapping file; a mapping file can name any other column or a
nested JSON path.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    """One catalog field as a source may supply it."""

    name: str
    kind: str  # key | text | int | float | bool | list | isrc | upc | date | rights
    aliases: tuple[str, ...] = ()
    required: bool = False
    lo: float | None = None
    hi: float | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """Column names that map onto this field without a mapping file."""
        return (self.name, *self.aliases)


_FEATURES = (
    Field("tempo", "float", lo=0, hi=1000),
    Field("key", "int", lo=-1, hi=11),
    Field("mode", "int", lo=0, hi=1),
    Field("time_signature", "int", lo=0, hi=16),
    Field("loudness", "float", lo=-100, hi=30),
    Field("energy", "float", lo=0, hi=1),
    Field("danceability", "float", lo=0, hi=1),
    Field("valence", "float", lo=0, hi=1),
)
FEATURE_NAMES = tuple(f.name for f in _FEATURES)

ENTITIES: dict[str, tuple[Field, ...]] = {
    "tracks": (
        Field("id", "key", ("track_id", "id", "recording_id", "mbid")),
        Field("title", "text", ("name", "track_title", "track_name"), required=True),
        Field("artists", "list", ("artist", "artist_name", "artist_names")),
        Field("artist_ids", "list", ()),
        Field("album", "text", ("release", "album_title", "release_title", "album_name")),
        Field("release_id", "key", ("album_id",)),
        Field("disc_number", "int", ("disc",), lo=0, hi=999),
        Field("track_number", "int", ("track", "tracknumber"), lo=0, hi=9999),
        Field("duration_ms", "int", (), lo=0, hi=2**31 - 1),
        Field("explicit", "bool"),
        Field("isrc", "isrc"),
        Field("popularity", "int", lo=0, hi=100),
        Field("listens", "int", ("streams", "playcount", "listen_count"), lo=0),
        Field("rights_status", "rights", ("rights", "license")),
        *_FEATURES,
    ),
    "releases": (
        Field("id", "key", ("release_id", "album_id", "id")),
        Field("title", "text", ("name", "album", "album_title"), required=True),
        Field("release_type", "text", ("album_type", "type")),
        Field("artists", "list", ("artist", "artist_name", "artist_names")),
        Field("artist_ids", "list", ()),
        Field("upc", "upc", ("ean", "barcode")),
        Field("label", "text"),
        Field("copyright_c", "text"),
        Field("copyright_p", "text"),
        Field("release_date", "date", ("date",)),
        Field("total_tracks", "int", lo=0, hi=100_000),
        Field("popularity", "int", lo=0, hi=100),
    ),
    "artists": (
        Field("id", "key", ("artist_id", "id")),
        Field("name", "text", ("artist", "artist_name"), required=True),
        Field("followers", "int", lo=0),
        Field("popularity", "int", lo=0, hi=100),
        Field("genres", "list", ("genre",)),
    ),
}

ENTITY_ALIASES = {"tracks": "tracks", "track": "tracks", "recordings": "tracks",
                  "releases": "releases", "release": "releases", "albums": "releases",
                  "album": "releases", "artists": "artists", "artist": "artists"}

RELEASE_TYPES = ("single", "ep", "album", "compilation", "broadcast", "other")
RIGHTS_FIXED = ("public_domain", "licensed_by_rightsholder", "all_rights_reserved", "unknown")
# Creative Commons licence ids in SPDX form: CC0-1.0, CC-BY-4.0, CC-BY-NC-SA-3.0, CC-PDDC ...
RIGHTS_CC_PATTERN = r"CC0-1\.0|CC-PDDC|CC-BY(-NC)?(-ND|-SA)?-[1-4]\.[0-5](-[A-Z]{2,3})?"
