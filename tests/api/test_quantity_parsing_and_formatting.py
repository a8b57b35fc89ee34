"""Kubernetes quantity strings: exact parsing, byte counts, canonical formatting.

Covers:
- `parse` over every suffix family (binary, decimal, exponent), signs and decimal points;
- `parse` rejecting what the Kubernetes grammar rejects (with the quantity in the message);
- `parse_bytes`: whole, non-negative, 64-bit byte counts from strings and JSON integers only;
- `format_bytes`: the canonical form, and its round trip through `parse_bytes` (hypothesis).
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api import errors, quantities

KI, MI, GI = 1024, 1024**2, 1024**3


@pytest.mark.parametrize(
    ("text", "value"),
    [
        pytest.param("0", 0, id="zero"),
        pytest.param("1", 1, id="plain-int"),
        pytest.param("007", 7, id="leading-zeros"),
        pytest.param("+5", 5, id="plus-sign"),
        pytest.param("-5", -5, id="minus-sign"),
        pytest.param("4Gi", 4 * GI, id="Gi"),
        pytest.param("512Mi", 512 * MI, id="Mi"),
        pytest.param("1Ki", KI, id="Ki"),
        pytest.param("1Ti", 1024**4, id="Ti"),
        pytest.param("1Pi", 1024**5, id="Pi"),
        pytest.param("1Ei", 1024**6, id="Ei"),
        pytest.param("1.5Gi", 3 * GI // 2, id="fractional-binary"),
        pytest.param("1.5G", 1_500_000_000, id="fractional-decimal"),
        pytest.param("1n", Fraction(1, 10**9), id="nano"),
        pytest.param("1u", Fraction(1, 10**6), id="micro"),
        pytest.param("100m", Fraction(1, 10), id="milli"),
        pytest.param("1k", 1000, id="kilo"),
        pytest.param("1M", 10**6, id="mega"),
        pytest.param("1T", 10**12, id="tera"),
        pytest.param("1P", 10**15, id="peta"),
        pytest.param("1E", 10**18, id="exa-not-exponent"),
        pytest.param("1e3", 1000, id="exponent"),
        pytest.param("1E3", 1000, id="exponent-upper"),
        pytest.param("1e+3", 1000, id="exponent-plus"),
        pytest.param("25e-2", Fraction(1, 4), id="exponent-minus"),
        pytest.param("1.5e1", 15, id="fraction-and-exponent"),
        pytest.param(".5", Fraction(1, 2), id="no-integer-part"),
        pytest.param("5.", 5, id="no-fraction-digits"),
        pytest.param("1.Gi", GI, id="point-then-suffix"),
        pytest.param("-1.5Mi", -3 * MI // 2, id="negative-binary"),
    ],
)
def test_parse_valid(text: str, value: Fraction | int) -> None:
    assert quantities.parse(text) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("", "invalid quantity", id="empty"),
        pytest.param(".", "invalid quantity", id="lone-point"),
        pytest.param("+", "invalid quantity", id="lone-sign"),
        pytest.param("Gi", "invalid quantity", id="suffix-only"),
        pytest.param(" 1", "invalid quantity", id="leading-space"),
        pytest.param("1 ", "invalid quantity", id="trailing-space"),
        pytest.param("1 Gi", "invalid quantity", id="inner-space"),
        pytest.param("10GB", 'invalid quantity "10GB"', id="GB"),
        pytest.param("1K", "invalid quantity", id="upper-K"),
        pytest.param("1ki", "invalid quantity", id="lower-ki"),
        pytest.param("1Kib", "invalid quantity", id="Kib"),
        pytest.param("1e", "invalid quantity", id="bare-e"),
        pytest.param("1e1.5", "invalid quantity", id="fractional-exponent"),
        pytest.param("1.2.3", "invalid quantity", id="two-points"),
        pytest.param("--1", "invalid quantity", id="double-sign"),
        pytest.param("1,5", "invalid quantity", id="comma"),
        pytest.param("\u0661", "invalid quantity", id="non-ascii-digit"),
        pytest.param("0x10", "invalid quantity", id="hex"),
        pytest.param("1e1001", "exponent out of range", id="huge-exponent"),
        pytest.param("1e-" + "9" * 5000, "exponent out of range", id="giant-exponent"),
        pytest.param("1" * 1001, "more than 1000 digits", id="too-many-digits"),
    ],
)
def test_parse_invalid(text: str, message: str) -> None:
    with pytest.raises(errors.ConfigError) as info:
        quantities.parse(text)
    assert info.value.path == ""
    assert message in info.value.message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("4Gi", 4 * GI, id="binary"),
        pytest.param("1.5Gi", 3 * GI // 2, id="whole-after-scaling"),
        pytest.param("1000m", 1, id="milli-whole"),
        pytest.param("1e3", 1000, id="exponent"),
        pytest.param(1048576, MI, id="json-integer"),
        pytest.param(0, 0, id="zero"),
        pytest.param(str(quantities.MAX_BYTES), quantities.MAX_BYTES, id="max"),
    ],
)
def test_parse_bytes_valid(value: str | int, expected: int) -> None:
    assert quantities.parse_bytes(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("0.5", 'must be a whole number of bytes, got "0.5"', id="fraction"),
        pytest.param("100m", "must be a whole number of bytes", id="milli"),
        pytest.param("-1Mi", 'must not be negative, got "-1Mi"', id="negative-string"),
        pytest.param(-1, "must not be negative, got -1", id="negative-int"),
        pytest.param("8Ei", "must be at most 9223372036854775807 bytes", id="too-large"),
        pytest.param(2**63, "must be at most", id="too-large-int"),
        pytest.param(True, "must be a quantity string or an integer, got boolean", id="bool"),
        pytest.param(1.5, "got number", id="float"),
        pytest.param(None, "got null", id="null"),
        pytest.param(["1"], "got array", id="list"),
        pytest.param("1GB", "invalid quantity", id="bad-string"),
    ],
)
def test_parse_bytes_invalid(value: object, message: str) -> None:
    with pytest.raises(errors.ConfigError) as info:
        quantities.parse_bytes(value)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("n", "text"),
    [
        pytest.param(0, "0", id="zero"),
        pytest.param(1, "1", id="one"),
        pytest.param(1023, "1023", id="below-Ki"),
        pytest.param(1024, "1Ki", id="Ki"),
        pytest.param(1536, "1536", id="not-a-multiple"),
        pytest.param(1000, "1k", id="k"),
        pytest.param(1_500_000_000, "1500M", id="decimal-M"),
        pytest.param(4 * GI, "4Gi", id="Gi"),
        pytest.param(1000 * MI, "1000Mi", id="thousand-Mi"),
        pytest.param(80 * GI, "80Gi", id="gpu-memory"),
        pytest.param(2**60, "1Ei", id="Ei"),
        pytest.param(2**70, "1024Ei", id="beyond-Ei"),
        pytest.param(10**18, "1E", id="decimal-shorter"),
        pytest.param(2_048_000, "2048k", id="decimal-shorter-than-Ki"),
        pytest.param(quantities.MAX_BYTES, "9223372036854775807", id="max"),
    ],
)
def test_format_bytes(n: int, text: str) -> None:
    assert quantities.format_bytes(n) == text


@pytest.mark.parametrize("n", [-1, True, 1.0], ids=["negative", "bool", "float"])
def test_format_bytes_rejects_non_counts(n: int) -> None:
    with pytest.raises(ValueError, match="non-negative int"):
        quantities.format_bytes(n)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, quantities.MAX_BYTES)
    | st.integers(0, 2**20).map(lambda m: m * 1024**3)
    | st.integers(0, 10**6).map(lambda m: m * 1000**2)
)
def test_format_bytes_round_trips(n: int) -> None:
    text = quantities.format_bytes(n)
    assert quantities.parse_bytes(text) == n
    assert quantities.parse(text) == n
