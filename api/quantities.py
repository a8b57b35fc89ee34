"""Kubernetes resource quantities (``4Gi``, ``1.5G``, ``100m``, ``1e3``): parsing and formatting.

The grammar is Kubernetes' (``k8s.io/apimachinery/pkg/api/resource``)::

    quantity    ::= [+-] number [suffix]
    number      ::= digits | digits "." [digits] | "." digits       (ASCII digits)
    suffix      ::= binary | decimal | exponent
    binary      ::= Ki | Mi | Gi | Ti | Pi | Ei                      (powers of 1024)
    decimal     ::= n | u | m | k | M | G | T | P | E                (powers of 1000)
    exponent    ::= (e | E) [+-] digits                             (a power of ten)

Values are exact (`fractions.Fraction`). Two limits that Kubernetes does not have keep parsing cheap
on hostile input: at most 1000 digits and exponents within ±1000 (no real quantity comes close).

`format_bytes` writes a form that kube-apiserver prints back unchanged: the largest binary suffix
that keeps a multiple of 1024 whole, else the largest decimal suffix that keeps the value whole,
and the decimal form when it is shorter (``4294967296 -> "4Gi"``, ``1500000000 -> "1500M"``,
``1536 -> "1536"``, ``10**18 -> "1E"``). Both are canonical in their own Kubernetes format (BinarySI
and DecimalSI), so capacities the device builder writes with it are never rewritten by the server.
"""

from __future__ import annotations

import re
from fractions import Fraction

from api import _jsonfields, errors

MAX_BYTES = 2**63 - 1
"""The largest byte count we accept: Kubernetes reads quantities as 64-bit integers."""

_BINARY = {"": 0, "Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -3, "u": -2, "m": -1, "": 0, "k": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}
_BINARY_SUFFIXES = sorted(_BINARY, key=_BINARY.__getitem__)
_DECIMAL_SUFFIXES = [s for s in sorted(_DECIMAL, key=_DECIMAL.__getitem__) if _DECIMAL[s] >= 0]
_QUANTITY = re.compile(
    r"(?P<sign>[+-])?"
    r"(?P<int>[0-9]+)?(?:\.(?P<frac>[0-9]*))?"
    r"(?P<suffix>[KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?"
)
_MAX_DIGITS = 1000
_MAX_EXPONENT = 1000
_EXAMPLES = "expected a number with an optional suffix, e.g. 4Gi, 1.5G, 512Mi, 100m or 1e3"


def parse(text: str) -> Fraction:
    """The exact value of a Kubernetes quantity string; `errors.ConfigError` if it is not one."""
    match = _QUANTITY.fullmatch(text)
    if match is None or (match["int"] is None and not match["frac"]):
        raise errors.ConfigError(f"invalid quantity {errors.quote(text)}: {_EXAMPLES}")
    digits = (match["int"] or "") + (match["frac"] or "")
    if len(digits) > _MAX_DIGITS:
        raise errors.ConfigError(f"invalid quantity: more than {_MAX_DIGITS} digits")
    value = Fraction(int(digits), 10 ** len(match["frac"] or ""))
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        value *= 1024 ** _BINARY[suffix]
    elif suffix in _DECIMAL:
        value *= Fraction(1000) ** _DECIMAL[suffix]
    else:
        value *= Fraction(10) ** _exponent(suffix, text)
    return -value if match["sign"] == "-" else value


def parse_bytes(value: object) -> int:
    """A byte count from a quantity string or a JSON integer: whole, 0 to `MAX_BYTES`.

    Anything else (a float, a boolean, null) is a `errors.ConfigError` too.
    """
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise errors.ConfigError(
            f"must be a quantity string or an integer, got {_jsonfields.type_name(value)}"
        )
    amount = parse(value) if isinstance(value, str) else Fraction(value)
    shown = errors.quote(value) if isinstance(value, str) else str(value)
    if amount.denominator != 1:
        raise errors.ConfigError(f"must be a whole number of bytes, got {shown}")
    if amount < 0:
        raise errors.ConfigError(f"must not be negative, got {shown}")
    if amount > MAX_BYTES:
        raise errors.ConfigError(f"must be at most {MAX_BYTES} bytes, got {shown}")
    return int(amount)


def format_bytes(n: int) -> str:
    """The canonical quantity string for `n` bytes (see the module docstring); `n` >= 0."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"a byte count must be a non-negative int, got {n!r}")
    decimal = _with_suffix(n, 1000, _DECIMAL_SUFFIXES)
    if n == 0 or n % 1024:
        return decimal
    binary = _with_suffix(n, 1024, _BINARY_SUFFIXES)
    return decimal if len(decimal) < len(binary) else binary


def _with_suffix(n: int, base: int, suffixes: list[str]) -> str:
    power = 0
    while n and n % base == 0 and power < len(suffixes) - 1:
        n //= base
        power += 1
    return f"{n}{suffixes[power]}"


def _exponent(suffix: str, text: str) -> int:
    sign = -1 if suffix[1] == "-" else 1
    digits = suffix[1:].lstrip("+-").lstrip("0") or "0"
    # Compare lengths first: Python refuses int() of very long digit strings.
    if len(digits) > len(str(_MAX_EXPONENT)) or int(digits) > _MAX_EXPONENT:
        raise errors.ConfigError(
            f"invalid quantity {errors.quote(text)}: exponent out of range (±{_MAX_EXPONENT})"
        )
    return sign * int(digits)
