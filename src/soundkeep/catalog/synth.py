"""Deterministic synthetic catalogs shaped like the reference catalog, generated in numpy.

The shape follows the reference figures (see ARCHITECTURE.md): tracks : releases : artists
about 256 : 58.6 : 15.4; 77 % of tracks with an ISRC, some ISRCs on 2 to 20 rows; about 1.36
artists per track; 768 genres; popularity where about 0.1 % of tracks reach 50 and most are 0;
durations peaking at 2, 3 and 4 minutes; 13.5 % explicit; mostly singles; a mix of rights.

Generation is vectorised and chunked: chunk k of the tracks is drawn from its own generator
seeded with (seed, k), so memory is bounded by the chunk size and the output is the same on
any machine for the same (tracks, seed).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from soundkeep.errors import SoundkeepError

TRACKS_PER_ARTIST = 256 / 15.4
CHUNK_TRACKS = 1_000_000
# Tracks per output file: larger catalogs come as part files (tracks-0000.parquet, ...), so
# each part is ingested in its own transaction.
PART_CHUNKS = 16
# Several row groups per chunk, so readers (DuckDB among them) scan one file on many threads.
ROW_GROUP_ROWS = 131_072

# Popularity as a function of rank: log10(fraction of tracks ranked above) -> popularity.
# Calibrated so that ~3 tracks per 256 M reach 98+, the top 10,000 per 256 M are 70-100,
# about 0.1 % are >= 50, and about 70 % are 0.
POP_KNOTS_X = np.array([-9.0, -7.93, -4.41, -3.0, -2.0, -1.0, -0.52, -0.5, 0.0])
POP_KNOTS_Y = np.array([100.0, 98.0, 70.0, 50.0, 30.0, 12.0, 1.0, 0.0, 0.0])
# The same for artists (fewer, and their popularity is that of their best tracks).
ART_KNOTS_X = np.array([-7.0, -5.0, -3.0, -2.0, -1.0, -0.3, 0.0])
ART_KNOTS_Y = np.array([100.0, 90.0, 65.0, 45.0, 25.0, 5.0, 0.0])

RELEASE_TYPES = np.array(["single", "ep", "album", "compilation"])
RELEASE_TYPE_P = [0.64, 0.13, 0.19, 0.04]

RIGHTS = np.array([
    "all_rights_reserved", "unknown", "licensed_by_rightsholder", "CC-BY-4.0",
    "CC-BY-SA-4.0", "CC-BY-NC-4.0", "CC0-1.0", "public_domain",
])
_RIGHTS_ARR = pa.array(RIGHTS)
_TYPES_ARR = pa.array(RELEASE_TYPES)
RIGHTS_P = [0.58, 0.16, 0.10, 0.06, 0.03, 0.02, 0.02, 0.03]

ISRC_COUNTRIES = np.array(["US", "GB", "DE", "FR", "SE", "JP", "BR", "NL", "CA", "AU", "QM",
                           "QZ", "ES", "IT", "KR", "MX"])
ISRC_COUNTRY_P = np.array([30, 12, 8, 6, 5, 6, 5, 3, 4, 3, 6, 4, 3, 2, 2, 1], dtype=float)

# Keys 0..11 (C..B) x mode (1 major, 0 minor): C major most common (9.3 %), D#/Eb minor least.
_KEY_P = {(0, 1): 9.3, (3, 0): 1.3}

_GENRE_BASES = [
    "pop", "rock", "hip hop", "rap", "jazz", "blues", "soul", "funk", "r&b", "disco", "house",
    "techno", "trance", "drum and bass", "dubstep", "ambient", "folk", "country", "bluegrass",
    "metal", "punk", "hardcore", "emo", "grunge", "reggae", "dancehall", "ska", "salsa",
    "bachata", "cumbia", "tango", "samba", "bossa nova", "afrobeat", "highlife", "gospel",
    "classical", "opera", "baroque", "choral", "soundtrack", "lo-fi", "trap", "drill", "grime",
    "garage", "idm", "shoegaze",
]
_GENRE_MODIFIERS = [
    "", "indie", "dark", "swedish", "japanese", "brazilian", "german", "french", "deep",
    "experimental", "modern", "classic", "underground", "latin", "uk", "progressive",
]
GENRES = [f"{m} {b}".strip() for m in _GENRE_MODIFIERS for b in _GENRE_BASES]

_SYLLABLES = ["la", "mo", "ri", "ka", "sun", "el", "da", "vi", "no", "ra", "te", "lu", "mi",
              "on", "sa", "ko", "be", "ta", "ne", "zo", "ar", "is", "ma", "lo", "fi", "go"]
_WORDS = ["Love", "Night", "Heart", "Fire", "Summer", "Dream", "Light", "Rain", "Home", "Blue",
          "Gold", "River", "Song", "Dance", "Road", "Stars", "Ocean", "Winter", "Shadow", "Echo",
          "Wild", "Young", "Lost", "Forever", "Electric", "Midnight", "Paradise", "Storm",
          "Angel", "Silver", "City", "Moon", "Sky", "Waves", "Ghost", "Time", "Memory", "Run",
          "Alive", "Golden", "Neon", "Velvet", "Falling", "Higher", "Sweet", "Little", "Broken",
          "Free", "Morning", "Sunset", "Intro", "Outro", "Interlude", "Remix", "Live", "Demo"]


@dataclass
class SynthSummary:
    """What synth wrote."""

    tracks: int
    releases: int
    artists: int
    seed: int
    source: str
    files: list[str]

    def as_dict(self) -> dict[str, object]:
        """Plain data for --json."""
        return asdict(self)


def _pick(rng: np.random.Generator, options: np.ndarray, p: list[float] | np.ndarray,
          n: int) -> np.ndarray:
    weights = np.asarray(p, dtype=float)
    return np.asarray(options)[rng.choice(len(options), size=n, p=weights / weights.sum())]


def _vocabulary(seed: int, n: int, words: int) -> pa.Array:
    """A dictionary of n names made of 1..words pieces (built once; rows pick from it)."""
    rng = np.random.default_rng([seed, 999])
    syll = np.array(_SYLLABLES)
    made = np.array([a.capitalize() + b for a in _SYLLABLES for b in _SYLLABLES])
    pool = np.concatenate([np.array(_WORDS), made, np.char.add(made, syll[:len(made) % 26 or 1])])
    count = rng.integers(1, words + 1, size=n)
    parts = rng.integers(0, len(pool), size=(n, words))
    out = [" ".join(pool[parts[i, : count[i]]]) for i in range(n)]
    return pa.array(out, type=pa.string())


def _from_vocab(vocab: pa.Array, idx: np.ndarray) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(idx, type=pa.int32()), vocab).cast(pa.string())


_DIGIT_TABLE = np.array([list(f"{i:04d}".encode()) for i in range(10_000)], dtype=np.uint8)


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) ASCII digit codes of integers 0..10**width-1 (width <= 4), zero-padded."""
    return _DIGIT_TABLE[values][:, 4 - width:]


def _random_digits(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    """(n, width) random ASCII digits."""
    return rng.integers(48, 58, size=(n, width), dtype=np.uint8)


def _ascii_strings(codes: np.ndarray) -> pa.Array:
    """Turn an (n, width) uint8 matrix of ASCII codes into a string array."""
    n, width = codes.shape
    fixed = np.ascontiguousarray(codes).view(f"S{width}").reshape(n)
    return pa.array(fixed, type=pa.binary(width)).cast(pa.string())


def _isrc_codes(rng: np.random.Generator, years: np.ndarray) -> np.ndarray:
    """(n, 12) ASCII codes of valid ISRCs: country, registrant, year, designation."""
    n = len(years)
    country = rng.choice(len(ISRC_COUNTRIES), size=n, p=ISRC_COUNTRY_P / ISRC_COUNTRY_P.sum())
    cc = np.frombuffer("".join(ISRC_COUNTRIES).encode(), dtype=np.uint8).reshape(-1, 2)[country]
    alnum = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", dtype=np.uint8)
    reg = alnum[rng.integers(0, 36, size=(n, 3), dtype=np.uint8)]
    reg[:, 0] = alnum[rng.integers(0, 26, size=n, dtype=np.uint8)]
    return np.hstack([cc, reg, _digits(years % 100, 2), _random_digits(rng, n, 5)])


def _upcs(rng: np.random.Generator, n: int) -> pa.Array:
    body = _random_digits(rng, n, 11)
    weights = np.array([3, 1] * 5 + [3], dtype=np.int32)
    check = (10 - ((body - 48) @ weights) % 10) % 10
    return _ascii_strings(np.hstack([body, (check + 48).astype(np.uint8)[:, None]]))


def _dates(rng: np.random.Generator, years: np.ndarray) -> pa.Array:
    """Release dates written at their precision: 'YYYY', 'YYYY-MM' or 'YYYY-MM-DD'."""
    n = len(years)
    month = rng.integers(1, 13, size=n)
    day = rng.integers(1, 29, size=n)
    dash = np.full((n, 1), 45, np.uint8)
    full = _ascii_strings(np.hstack([_digits(years, 4), dash, _digits(month, 2), dash,
                                     _digits(day, 2)]))
    precision = rng.choice(3, size=n, p=[0.10, 0.05, 0.85])  # year, month, day
    return pc.if_else(pa.array(precision == 0), pc.utf8_slice_codeunits(full, 0, 4),
                      pc.if_else(pa.array(precision == 1), pc.utf8_slice_codeunits(full, 0, 7),
                                 full))


def _normal(rng: np.random.Generator, mean: float, sd: float, n: int, lo: float,
            hi: float) -> pa.Array:
    x = rng.standard_normal(n, dtype=np.float32) * np.float32(sd) + np.float32(mean)
    return pa.array(np.clip(x, lo, hi, out=x))


def _unit(rng: np.random.Generator, mean: float, sd: float, n: int) -> pa.Array:
    return _normal(rng, mean, sd, n, 0.0, 1.0)


def _list_array(offsets: np.ndarray, values: np.ndarray, kind: pa.DataType) -> pa.Array:
    return pa.ListArray.from_arrays(pa.array(offsets, type=pa.int32()),
                                    pa.array(values, type=kind))


def _artist_choice(rng: np.random.Generator, n_artists: int, size: int) -> np.ndarray:
    # Famous artists (low index) release more: P(index < x) grows like sqrt(x).
    return np.minimum((n_artists * rng.random(size) ** 2).astype(np.int64), n_artists - 1)


def _key_probabilities() -> np.ndarray:
    p = np.full(24, (100 - sum(_KEY_P.values())) / 22)
    for (key, mode), share in _KEY_P.items():
        p[key * 2 + mode] = share
    return p / p.sum()


_DICTIONARY_COLUMNS = {"title", "rights_status", "release_type", "label", "genres", "name"}


class _Writer:
    """One Parquet file, written row group by row group under a temporary name."""

    def __init__(self, path: Path, schema: pa.Schema, entity: str, source: str) -> None:
        self.path = path
        self.tmp = path.with_suffix(".parquet.tmp")
        meta = {b"soundkeep.entity": entity.encode(), b"soundkeep.source": source.encode()}
        # Dictionary-encode only the low-cardinality text columns: it is most of the write time.
        dictionary = [f.name for f in schema if f.name in _DICTIONARY_COLUMNS]
        self.writer = pq.ParquetWriter(self.tmp, schema.with_metadata(meta),
                                       compression="snappy", use_dictionary=dictionary)

    def write(self, table: pa.Table) -> None:
        self.writer.write_table(table.replace_schema_metadata(self.writer.schema.metadata),
                                row_group_size=ROW_GROUP_ROWS)

    def close(self) -> None:
        self.writer.close()
        self.tmp.replace(self.path)


def write_catalog(out: Path, tracks: int, seed: int = 0,
                  on_progress: Callable[[int], None] | None = None) -> SynthSummary:
    """Write artists.parquet, releases.parquet and tracks.parquet for a catalog of N tracks.

    Beyond PART_CHUNKS * CHUNK_TRACKS tracks, releases and tracks come as numbered parts.
    """
    if tracks < 1:
        raise SoundkeepError("need at least one track", field="tracks", value=tracks,
                             expected="an integer >= 1")
    out.mkdir(parents=True, exist_ok=True)
    source = f"synth-{seed}-{tracks}"
    n_artists = max(1, round(tracks / TRACKS_PER_ARTIST))
    vocab_titles = _vocabulary(seed, 50_000, 4)
    vocab_first = _vocabulary(seed + 1, 20_000, 2)
    vocab_last = _vocabulary(seed + 2, 20_000, 1)
    labels = _vocabulary(seed + 3, 5_000, 2)
    key_p = _key_probabilities()

    n_chunks = -(-tracks // CHUNK_TRACKS)
    n_parts = -(-n_chunks // PART_CHUNKS)

    def part_name(entity: str, part: int) -> str:
        return f"{entity}.parquet" if n_parts == 1 else f"{entity}-{part:04d}.parquet"

    # Every part holds at least one chunk of tracks and their releases: the files are known.
    files = ["artists.parquet", *(part_name(e, p) for e in ("releases", "tracks")
                                  for p in range(n_parts))]

    writers: dict[str, _Writer] = {}

    def writer(entity: str, schema: pa.Schema, part: int) -> _Writer:
        name = part_name(entity, part)
        if entity in writers and writers[entity].path.name != name:
            writers.pop(entity).close()
        if entity not in writers:
            writers[entity] = _Writer(out / name, schema, entity, source)
        return writers[entity]

    def make(k: int) -> tuple[pa.Table, pa.Table]:
        size = min(CHUNK_TRACKS, tracks - k * CHUNK_TRACKS)
        # Release ids are k * CHUNK_TRACKS + j, so a chunk needs nothing from the ones before.
        return _chunk(np.random.default_rng([seed, k]), k * CHUNK_TRACKS, k * CHUNK_TRACKS,
                      size, n_artists, vocab_titles, labels, key_p)

    # Generate the next chunks on a second thread while this one writes (both release the GIL
    # for most of their work), keeping at most two chunks in memory ahead of the writer.
    n_releases = 0
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending = [pool.submit(make, k) for k in range(min(2, n_chunks))]
        for k in range(n_chunks):
            t_table, r_table = pending.pop(0).result()
            if k + 2 < n_chunks:
                pending.append(pool.submit(make, k + 2))
            writer("releases", _RELEASE_SCHEMA, k // PART_CHUNKS).write(r_table)
            writer("tracks", _TRACK_SCHEMA, k // PART_CHUNKS).write(t_table)
            n_releases += r_table.num_rows
            if on_progress:
                on_progress(t_table.num_rows)
    for w in writers.values():
        w.close()

    aw = _Writer(out / "artists.parquet", _ARTIST_SCHEMA, "artists", source)
    for start in range(0, n_artists, CHUNK_TRACKS):
        rng = np.random.default_rng([seed, 1_000_000 + start // CHUNK_TRACKS])
        aw.write(_artists(rng, start, min(CHUNK_TRACKS, n_artists - start), n_artists,
                          vocab_first, vocab_last))
    aw.close()
    return SynthSummary(tracks=tracks, releases=n_releases, artists=n_artists, seed=seed,
                        source=source, files=files)


_TRACK_SCHEMA = pa.schema([
    ("track_id", pa.int64()), ("title", pa.string()), ("release_id", pa.int64()),
    ("artist_ids", pa.list_(pa.int64())), ("disc_number", pa.int16()),
    ("track_number", pa.int16()), ("duration_ms", pa.int32()), ("explicit", pa.bool_()),
    ("isrc", pa.string()), ("popularity", pa.int16()), ("rights_status", pa.string()),
    ("tempo", pa.float32()), ("key", pa.int8()), ("mode", pa.int8()),
    ("time_signature", pa.int8()), ("loudness", pa.float32()), ("energy", pa.float32()),
    ("danceability", pa.float32()), ("valence", pa.float32()),
])
_RELEASE_SCHEMA = pa.schema([
    ("release_id", pa.int64()), ("title", pa.string()), ("release_type", pa.string()),
    ("artist_ids", pa.list_(pa.int64())), ("upc", pa.string()), ("label", pa.string()),
    ("copyright_c", pa.string()), ("copyright_p", pa.string()), ("release_date", pa.string()),
    ("total_tracks", pa.int32()), ("popularity", pa.int16()),
])
_ARTIST_SCHEMA = pa.schema([
    ("artist_id", pa.int64()), ("name", pa.string()), ("followers", pa.int64()),
    ("popularity", pa.int16()), ("genres", pa.list_(pa.string())),
])


def _chunk(rng: np.random.Generator, first_track: int, first_release: int, n: int,
           n_artists: int, vocab_titles: pa.Array, labels: pa.Array,
           key_p: np.ndarray) -> tuple[pa.Table, pa.Table]:
    # Releases: draw more than enough, keep those that cover n tracks, cut the last one short.
    draw = n // 2 + 10
    rtype = rng.choice(4, size=draw, p=RELEASE_TYPE_P)
    sizes = np.select(
        [rtype == 0, rtype == 1, rtype == 2],
        [1 + (rng.random(draw) < 0.35), rng.integers(4, 7, draw), rng.integers(8, 16, draw)],
        rng.integers(12, 25, draw),
    )
    ends = np.cumsum(sizes)
    m = int(np.searchsorted(ends, n)) + 1
    rtype, sizes = rtype[:m], sizes[:m].copy()
    sizes[-1] -= int(ends[m - 1]) - n
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    release_of = np.repeat(np.arange(m), sizes)

    years = np.clip(2025 - rng.exponential(9.0, m).astype(np.int64), 1900, 2025)
    r_artist = _artist_choice(rng, n_artists, m)
    r_rights = rng.choice(len(RIGHTS), size=m, p=np.array(RIGHTS_P) / sum(RIGHTS_P))

    # Tracks.
    q = np.maximum(rng.random(n), 1e-12)
    popularity = np.floor(np.interp(np.log10(q), POP_KNOTS_X, POP_KNOTS_Y)).astype(np.int16)
    comp = rng.choice(4, size=n, p=[0.25, 0.35, 0.25, 0.15])
    peaks = np.array([120.0, 180.0, 240.0, 0.0])[comp] + rng.normal(0, 18, n)
    broad = rng.lognormal(np.log(200), 0.5, n)
    seconds = np.clip(np.where(comp == 3, broad, peaks), 5, 3600)
    duration = (seconds * 1000).astype(np.int32)
    duration[rng.random(n) < 0.0001] = 0

    has_isrc = rng.random(n) < 0.77
    codes = _isrc_codes(rng, years[release_of])
    # Some recordings appear on several releases: later rows copy an ISRC (2..20 rows each).
    with_isrc = np.flatnonzero(has_isrc)
    n_copy = int(len(with_isrc) * 0.06)
    if n_copy and len(with_isrc) > 2 * n_copy:
        perm = rng.permutation(with_isrc)
        owners, free = perm[:n_copy], perm[n_copy:]
        mult = np.minimum(19, rng.zipf(2.2, size=n_copy))
        src = np.repeat(owners, mult)[:n_copy]
        codes[free[: len(src)]] = codes[src]
    isrc = pc.if_else(pa.array(has_isrc), _ascii_strings(codes), pa.scalar(None, pa.string()))

    # Artists: the release's artist first, then featured artists on some tracks.
    extra = rng.choice(3, size=n, p=[0.72, 0.20, 0.08])
    counts = 1 + extra
    offsets = np.concatenate([[0], np.cumsum(counts)])
    values = _artist_choice(rng, n_artists, int(offsets[-1]))
    values[offsets[:-1]] = r_artist[release_of]

    key_mode = rng.choice(24, size=n, p=key_p)
    tracks = pa.table({
        "track_id": pa.array(np.arange(first_track, first_track + n, dtype=np.int64)),
        "title": _from_vocab(vocab_titles, rng.integers(0, len(vocab_titles), n)),
        "release_id": pa.array(first_release + release_of.astype(np.int64)),
        "artist_ids": _list_array(offsets, values, pa.int64()),
        "disc_number": pa.array(np.ones(n, np.int16)),
        "track_number": pa.array((np.arange(n) - starts[release_of] + 1).astype(np.int16)),
        "duration_ms": pa.array(duration),
        "explicit": pa.array(rng.random(n) < 0.135),
        "isrc": isrc,
        "popularity": pa.array(popularity),
        "rights_status": _from_vocab(_RIGHTS_ARR, r_rights[release_of]),
        "tempo": _normal(rng, 120, 25, n, 50, 220),
        "key": pa.array((key_mode // 2).astype(np.int8)),
        "mode": pa.array((key_mode % 2).astype(np.int8)),
        "time_signature": pa.array(_pick(rng, np.array([4, 3, 5, 1, 7], np.int8),
                                         [0.88, 0.08, 0.02, 0.01, 0.01], n)),
        "loudness": _normal(rng, -9, 3.5, n, -40, 2),
        "energy": _unit(rng, 0.55, 0.2, n),
        "danceability": _unit(rng, 0.58, 0.18, n),
        "valence": _unit(rng, 0.5, 0.22, n),
    }, schema=_TRACK_SCHEMA)

    # Releases: popularity of the best track; type, barcode, label, copyright, date.
    r_pop = np.maximum.reduceat(popularity, starts).astype(np.int16)
    date_arr = _dates(rng, years)
    label = _from_vocab(labels, rng.integers(0, len(labels), m))
    year_s = pa.array(years).cast(pa.string())
    r_extra = rng.random(m) < 0.10
    r_counts = 1 + r_extra
    r_offsets = np.concatenate([[0], np.cumsum(r_counts)])
    r_values = _artist_choice(rng, n_artists, int(r_offsets[-1]))
    r_values[r_offsets[:-1]] = r_artist
    releases = pa.table({
        "release_id": pa.array(first_release + np.arange(m, dtype=np.int64)),
        "title": _from_vocab(vocab_titles, rng.integers(0, len(vocab_titles), m)),
        "release_type": _from_vocab(_TYPES_ARR, rtype),
        "artist_ids": _list_array(r_offsets, r_values, pa.int64()),
        "upc": _upcs(rng, m),
        "label": label,
        "copyright_c": pc.binary_join_element_wise("©", year_s, label, " "),
        "copyright_p": pc.binary_join_element_wise("℗", year_s, label, " "),
        "release_date": date_arr,
        "total_tracks": pa.array(sizes.astype(np.int32)),
        "popularity": pa.array(r_pop),
    }, schema=_RELEASE_SCHEMA)
    return tracks, releases


def _artists(rng: np.random.Generator, start: int, n: int, n_artists: int,
             vocab_first: pa.Array, vocab_last: pa.Array) -> pa.Table:
    rank = np.arange(start, start + n, dtype=np.int64)
    q = (rank + 1) / n_artists
    pop = np.floor(np.interp(np.log10(q), ART_KNOTS_X, ART_KNOTS_Y)).astype(np.int16)
    followers = (10 ** (pop / 14.0 + rng.normal(1.0, 0.6, n))).astype(np.int64)
    n_genres = rng.choice(5, size=n, p=[0.3, 0.3, 0.2, 0.12, 0.08])
    offsets = np.concatenate([[0], np.cumsum(n_genres)])
    genre_w = 1.0 / np.arange(1, len(GENRES) + 1) ** 0.9
    picks = rng.choice(len(GENRES), size=int(offsets[-1]), p=genre_w / genre_w.sum())
    first = _from_vocab(vocab_first, rng.integers(0, len(vocab_first), n))
    last = _from_vocab(vocab_last, rng.integers(0, len(vocab_last), n))
    name = pc.binary_join_element_wise(first, last, " ")
    return pa.table({
        "artist_id": pa.array(rank),
        "name": name,
        "followers": pa.array(followers),
        "popularity": pa.array(pop),
        "genres": _list_array(offsets, np.array(GENRES, dtype=object)[picks], pa.string()),
    }, schema=_ARTIST_SCHEMA)
