"""soundkeep.toml: documented defaults, merging, typed reads, and one-line errors (exit 2)."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from soundkeep import archive, cli, config, units
from soundkeep.errors import ArchiveError, ConfigError


def run(*args: str | Path) -> tuple[int, str, str]:
    """`soundkeep ARGS` through cli.main, in-process: (exit code, stdout, stderr)."""
    old = sys.argv
    code = 0
    with CliRunner().isolation() as (out, err, _):
        sys.argv = ["soundkeep", *map(str, args)]
        try:
            cli.main()
        except SystemExit as stop:
            code = int(stop.code or 0)
        finally:
            sys.argv = old
        return code, out.getvalue().decode(), err.getvalue().decode()


def one_line_error(code: int, err: str) -> str:
    """The single stderr line of a user error (exit 2, no traceback)."""
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An archive directory (closed)."""
    r = tmp_path / "arch"
    archive.init(r).close()
    return r


def write_toml(root: Path, text: str) -> Path:
    p = root / "soundkeep.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults_are_documented_and_complete() -> None:
    """defaults.toml parses, every section and key has a comment, and load(None) gives it."""
    text = config.default_text()
    data = tomllib.loads(text)
    assert {"catalog", "ingest", "rights"} <= set(data)
    assert config.load(None).data == data
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if "=" in line and not line.startswith(("#", " ", "[")):
            above = lines[i - 1].strip()
            assert above.startswith("#") or "=" in above, f"undocumented: {line}"
    s = config.load(None)
    assert s.typed("ingest.batch_rows", int, 1) >= 1
    assert s.typed("ingest.max_field_chars", int, 1) >= 1
    assert s.is_distributable("public_domain") and s.is_distributable("CC-BY-4.0")
    assert not s.is_distributable("unknown")
    assert not s.is_distributable("all_rights_reserved")


def test_user_settings_merge_over_defaults(root: Path) -> None:
    """A key the user sets wins; the keys left out keep their defaults; new tiers are allowed."""
    p = write_toml(root, "[ingest]\nbatch_rows = 10\n\n[tiers.lossless]\ncodec = \"flac\"\n")
    s = config.load(p)
    assert s.get("ingest.batch_rows") == 10
    assert s.get("ingest.max_field_chars") == config.load(None).get("ingest.max_field_chars")
    assert s.get("tiers.lossless.codec") == "flac"
    assert s.section("rights") == config.load(None).section("rights")


@pytest.mark.parametrize(("text", "says", "field"), [
    ("[ingest]\nbatch_rowz = 5\n", "unknown setting", "ingest.batch_rowz"),
    ("[ingestion]\nbatch_rows = 5\n", "unknown setting", "ingestion"),
    ("colour = \"blue\"\n", "unknown setting", "colour"),
    ("ingest = 5\n", "expected a table", "ingest"),
    ("[ingest\nbatch_rows = 5\n", "not valid TOML", None),
    ("[ingest]\nbatch_rows = 5\nbatch_rows = 6\n", "not valid TOML", None),
    ("[ingest]\nbatch_rows = \"many\"\n", "wrong type", "ingest.batch_rows"),
    ("[ingest]\nbatch_rows = 0\n", "too small", "ingest.batch_rows"),
    ("[ingest]\nbatch_rows = true\n", "wrong type", "ingest.batch_rows"),
    ("[ingest]\nmax_field_chars = 1.5\n", "wrong type", "ingest.max_field_chars"),
    ("[catalog]\nthreads = -1\n", "too small", "catalog.threads"),
    ("[rights]\ndistributable = \"CC-*\"\n", "list of strings", "rights.distributable"),
    ("[rights]\ndistributable = [1, 2]\n", "list of strings", "rights.distributable"),
])
def test_bad_settings_are_one_line(root: Path, tmp_path: Path, text: str, says: str,
                                   field: str | None) -> None:
    """Each mistake in soundkeep.toml: exit 2 and one line naming the file and the key."""
    p = write_toml(root, text)
    src = tmp_path / "t.csv"
    src.write_text("title\nA\n")
    line = one_line_error(*run("ingest", src, "-a", root, "--json")[::2])
    assert str(p) in line
    assert says in line
    if field:
        assert repr(field) in line


def test_non_utf8_settings(root: Path) -> None:
    """A soundkeep.toml that is not UTF-8 is a config error, not a crash."""
    (root / "soundkeep.toml").write_bytes(b"[ingest]\n# caf\xe9\nbatch_rows = 5\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(root / "soundkeep.toml")
    line = one_line_error(*run("stats", "-a", root)[::2])
    assert "soundkeep.toml" in line


def test_bad_memory_limit_is_one_line(root: Path) -> None:
    """A memory limit DuckDB refuses is named in one line when the catalog opens."""
    write_toml(root, '[catalog]\nmemory_limit = "lots"\n')
    line = one_line_error(*run("stats", "-a", root)[::2])
    assert "catalog.duckdb" in line and "cannot open the catalog" in line


def test_typed_reads() -> None:
    """typed() checks type and lower bound; ints are accepted as floats, bools are not ints."""
    s = config.Settings({"a": {"i": 3, "f": 2, "b": True, "t": "x"}}, Path("s.toml"))
    assert s.typed("a.i", int, 0) == 3
    assert s.typed("a.f", float) == 2.0 and isinstance(s.typed("a.f", float), float)
    assert s.typed("a.b", bool) is True
    with pytest.raises(ConfigError, match="wrong type"):
        s.typed("a.b", int)
    with pytest.raises(ConfigError, match="too small"):
        s.typed("a.i", int, 4)
    with pytest.raises(ConfigError, match="wrong type"):
        s.typed("a.t", float)
    with pytest.raises(ConfigError, match="unknown setting"):
        s.get("a.nope")
    with pytest.raises(ConfigError, match="unknown setting"):
        s.get("a.i.deeper")
    err = ConfigError("too small", file="s.toml", field="a.i", value=3, expected=">= 4")
    assert err.one_line() == "s.toml: field 'a.i': too small (got 3); expected >= 4"


def test_not_an_archive(tmp_path: Path) -> None:
    """A directory without soundkeep.toml is refused in one line, and nothing is created."""
    with pytest.raises(ArchiveError):
        archive.open_archive(tmp_path)
    line = one_line_error(*run("stats", "-a", tmp_path)[::2])
    assert "not a soundkeep archive" in line and str(tmp_path) in line
    assert list(tmp_path.iterdir()) == []


# -- sizes (the units settings are written in) --------------------------------------------------

@pytest.mark.parametrize(("text", "size"), [
    ("300TB", 300 * 10**12), ("1.5GiB", 3 * 2**29), ("4GB", 4 * 10**9), ("12", 12),
    ("7 kib", 7 * 1024), (" 2 PB ", 2 * 10**15), (0, 0), (5.0, 5), ("1B", 1),
])
def test_parse_size(text: str | int | float, size: int) -> None:
    """Sizes as people write them."""
    assert units.parse_size(text) == size


@pytest.mark.parametrize("text", ["-1", "-5GB", -3, "lots", "5 XB", "", "1e3GB", True, "GB"])
def test_parse_size_refuses(text: str | int | bool) -> None:
    """Negative, unitless words and unknown units are ConfigErrors naming the field."""
    with pytest.raises(ConfigError) as info:
        units.parse_size(text, field="plan.budget")
    assert info.value.field == "plan.budget"


@given(st.integers(0, 10**18))
def test_format_size_round_trips(n: int) -> None:
    """format_size then parse_size gives the size back to its 3 significant digits."""
    back = units.parse_size(units.format_size(n).replace(" ", ""))
    assert abs(back - n) <= max(1, n * 0.005)
