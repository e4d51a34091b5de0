"""ISRC, barcode (GTIN) and MBID checks: known values, properties, and Python == SQL."""

from __future__ import annotations

import string
import uuid
from collections.abc import Iterator

import duckdb
import pyarrow as pa
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from soundkeep.catalog import identifiers as ids

ISRC_ALNUM = string.ascii_uppercase + string.digits


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    """One in-memory DuckDB for the SQL twins."""
    c = duckdb.connect()
    yield c
    c.close()


def sql_eval(con: duckdb.DuckDBPyConnection, values: list[str]) -> list[tuple]:
    """Run every SQL twin over a column of values, in input order."""
    con.register("vals", pa.table({"i": list(range(len(values))),
                                   "x": pa.array(values, pa.string())}))
    try:
        n = ids.sql_normalize_isrc("x")
        u = ids.sql_normalize_upc("x")
        return con.execute(f"""
            SELECT {n}, {ids.sql_is_valid_isrc(n)}, {ids.sql_is_valid_isrc('x')},
                   {u}, {ids.sql_is_valid_upc('x')}, {ids.sql_is_valid_upc(u)},
                   {ids.sql_is_valid_mbid('x')}
            FROM vals ORDER BY i""").fetchall()
    finally:
        con.unregister("vals")


# -- ISRC ---------------------------------------------------------------------------------------

isrc_parts = st.tuples(
    st.text(string.ascii_uppercase, min_size=2, max_size=2),
    st.text(string.ascii_uppercase + string.digits, min_size=3, max_size=3),
    st.text(string.digits, min_size=2, max_size=2),
    st.text(string.digits, min_size=5, max_size=5),
)


@given(isrc_parts, st.lists(st.sampled_from(["-", " ", "\t", "\u00a0"]), max_size=4),
       st.data())
def test_valid_isrc_survives_any_spacing_and_case(parts: tuple[str, ...], seps: list[str],
                                                  data: st.DataObject) -> None:
    """Lower-casing an ISRC and putting hyphens/spaces anywhere still normalises to it."""
    code = "".join(parts)
    assert ids.is_valid_isrc(code)
    text = list(code.lower() if data.draw(st.booleans()) else code)
    for sep in seps:
        text.insert(data.draw(st.integers(0, len(text))), sep)
    assert ids.normalize_isrc("".join(text)) == code


def test_isrc_known_values() -> None:
    """The ISO 3901 examples and the ways an ISRC is commonly broken."""
    assert ids.normalize_isrc("us-rc1-76-07839") == "USRC17607839"
    assert ids.normalize_isrc(" USRC1 7607839 ") == "USRC17607839"
    assert ids.is_valid_isrc("USRC17607839")
    assert ids.is_valid_isrc("GBAYE0000351")
    assert ids.is_valid_isrc("QZ7A01900001")  # digits allowed in the registrant
    for bad in ("USRC1760783", "USRC176078390", "1SRC17607839", "USRC1A607839",
                "USRC176O7839", "US-RC1-76-07839", "usrc17607839", "", "USRC17607839\n",
                "ÜSRC17607839"):
        assert not ids.is_valid_isrc(bad), bad


@given(st.text(st.characters(codec="utf-8"), max_size=16))
def test_isrc_validity_means_structure(text: str) -> None:
    """Whatever the input, a normalised value is valid exactly when it has the ISO shape."""
    norm = ids.normalize_isrc(text)
    shape = (len(norm) == 12 and norm[:2].isalpha() and norm[:2].isascii()
             and norm[:2].isupper() and all(c in ISRC_ALNUM for c in norm[2:5])
             and norm[5:].isdigit() and norm[5:].isascii())
    assert ids.is_valid_isrc(norm) == shape


# -- barcodes -----------------------------------------------------------------------------------

def with_check(body: str) -> str:
    """A barcode made valid by appending its check digit."""
    return body + str(ids.gtin_check_digit(body))


@given(st.sampled_from([7, 11, 12, 13]).flatmap(
    lambda n: st.text(string.digits, min_size=n, max_size=n)))
def test_gtin_with_its_check_digit_is_valid(body: str) -> None:
    """EAN-8, UPC-A, EAN-13 and GTIN-14 bodies with the computed check digit validate."""
    assert ids.is_valid_upc(with_check(body))


@given(st.sampled_from([7, 11, 12, 13]).flatmap(
    lambda n: st.text(string.digits, min_size=n, max_size=n)), st.integers(1, 9))
def test_gtin_with_a_wrong_check_digit_is_refused(body: str, shift: int) -> None:
    """Any other last digit is refused."""
    good = with_check(body)
    bad = good[:-1] + str((int(good[-1]) + shift) % 10)
    assert not ids.is_valid_upc(bad)


@given(st.sampled_from([7, 11, 12, 13]).flatmap(
    lambda n: st.text(string.digits, min_size=n + 1, max_size=n + 1)),
    st.integers(0, 13), st.integers(1, 9))
def test_gtin_single_digit_errors_are_caught(code: str, pos: int, delta: int) -> None:
    """The GTIN check catches every single-digit substitution."""
    code = with_check(code[:-1])
    pos = pos % len(code)
    changed = code[:pos] + str((int(code[pos]) + delta) % 10) + code[pos + 1:]
    assert not ids.is_valid_upc(changed)


def test_gtin_known_values() -> None:
    """Real barcodes, and the lengths and characters that are not barcodes."""
    assert ids.is_valid_upc("036000291452")  # UPC-A
    assert ids.is_valid_upc("4006381333931")  # EAN-13
    assert ids.is_valid_upc("96385074")  # EAN-8
    assert ids.normalize_upc("0 36000-29145 2") == "036000291452"
    for bad in ("036000291453", "36000291452", "0360002914520", "03600029145a", "",
                "０３６０００２９１４５２", "1234567"):
        assert not ids.is_valid_upc(bad), bad


# -- MBID ---------------------------------------------------------------------------------------

@given(st.uuids())
def test_mbid_canonical_form(u: uuid.UUID) -> None:
    """A lower-case 8-4-4-4-12 UUID is an MBID; upper-case, braces or no hyphens are not."""
    assert ids.is_valid_mbid(str(u))
    assert not ids.is_valid_mbid(u.hex)
    assert not ids.is_valid_mbid("{" + str(u) + "}")
    if any(c.isalpha() for c in str(u)):
        assert not ids.is_valid_mbid(str(u).upper())


# -- the SQL twins agree with Python ------------------------------------------------------------

def near_isrc() -> st.SearchStrategy[str]:
    """Strings that are, or are a little way from, an ISRC (random text rarely is one)."""
    code = isrc_parts.map("".join)
    noise = st.text(st.sampled_from(list(string.ascii_letters + string.digits
                                         + "- \t\u00a0ßﬁıſÜ0٣")), max_size=3)
    return st.one_of(
        code,
        st.tuples(code, noise, st.integers(0, 12)).map(lambda t: t[0][:t[2]] + t[1] + t[0][t[2]:]),
        code.map(str.lower),
        st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20),
    )


def near_gtin() -> st.SearchStrategy[str]:
    """Barcodes with right or wrong check digits, separators, and other text."""
    body = st.sampled_from([7, 11, 12, 13]).flatmap(
        lambda n: st.text(string.digits, min_size=n, max_size=n))
    return st.one_of(
        body.map(with_check),
        st.text(string.digits, min_size=6, max_size=16),
        st.tuples(body.map(with_check), st.sampled_from(["-", " ", "a", "٣"]),
                  st.integers(0, 13)).map(lambda t: t[0][:t[2]] + t[1] + t[0][t[2]:]),
        st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=16),
    )


def near_mbid() -> st.SearchStrategy[str]:
    """UUIDs in canonical and other spellings, and other text."""
    return st.one_of(
        st.uuids().map(str),
        st.uuids().map(lambda u: str(u).upper()),
        st.uuids().map(lambda u: u.hex),
        st.text("0123456789abcdef-", min_size=30, max_size=40),
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(near_isrc(), near_gtin(), near_mbid()), min_size=1, max_size=60))
@example(["USRC17607839", "us-rc1 76 07839", "ßRC17607839", "ﬁRC17607839", "ıSRC17607839",
          "USRC17607839\n", "036000291452", "0360-0029145 2", "036000291453",
          str(uuid.UUID(int=1)), str(uuid.UUID(int=2**127 + 11)).upper()])
def test_python_and_sql_twins_agree(con: duckdb.DuckDBPyConnection, values: list[str]) -> None:
    """Every SQL twin gives the Python function's answer on the same inputs."""
    for value, got in zip(values, sql_eval(con, values), strict=True):
        norm, norm_valid, raw_valid, upc_norm, upc_valid, upc_norm_valid, mbid_valid = got
        py_norm = ids.normalize_isrc(value)
        assert norm_valid == ids.is_valid_isrc(py_norm), value
        if norm_valid:
            assert norm == py_norm, value
        assert raw_valid == ids.is_valid_isrc(value), value
        assert upc_norm == ids.normalize_upc(value), value
        assert upc_valid == ids.is_valid_upc(value), value
        assert upc_norm_valid == ids.is_valid_upc(ids.normalize_upc(value)), value
        assert mbid_valid == ids.is_valid_mbid(value), value
