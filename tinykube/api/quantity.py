"""Resource quantities (k8s.io/apimachinery/pkg/api/resource) as exact Fractions.

``parse_quantity`` accepts every upstream form: plain and fractional numbers, decimal SI
suffixes (n u m "" k M G T P E), binary suffixes (Ki .. Ei) and decimal exponents
(``1e3``, ``2E-1``). ``format_quantity`` prints the canonical form upstream serialises:
the largest suffix that keeps an integer mantissa, values rounded up to the nano.
"""

from __future__ import annotations

import functools
import math
import re
from fractions import Fraction
from typing import Mapping, Union

QuantityLike = Union[str, int, float, Fraction]
ResourceList = dict[str, Fraction]

QUANTITY_REGEX = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
_QUANTITY = re.compile(QUANTITY_REGEX)
_NUMBER = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$")
QUANTITY_ERROR = f"quantities must match the regular expression '{QUANTITY_REGEX}'"

_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15,
            "E": 18}
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_BY_EXP = {v: k for k, v in _DECIMAL.items()}
_BINARY_BY_EXP = {v: k for k, v in _BINARY.items()}


def _multiplier(suffix: str) -> Fraction:
    if suffix in _DECIMAL:
        return Fraction(10) ** _DECIMAL[suffix]
    if suffix in _BINARY:
        return Fraction(2) ** _BINARY[suffix]
    if suffix[:1] in ("e", "E"):
        exponent = suffix[1:]
        if re.fullmatch(r"[-+]?[0-9]+", exponent):
            return Fraction(10) ** int(exponent)
    raise ValueError(QUANTITY_ERROR)


def parse_quantity(value: QuantityLike) -> Fraction:
    """The exact value of a quantity; raises ValueError with upstream's message."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, bool):
        raise ValueError(QUANTITY_ERROR)
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(QUANTITY_ERROR)
        return Fraction(str(value))
    if not isinstance(value, str):
        raise ValueError(QUANTITY_ERROR)
    return _parse_text(value)


@functools.lru_cache(maxsize=4096)
def _parse_text(value: str) -> Fraction:
    """parse_quantity of a string, remembered (a Fraction is immutable): the kubelet and the
    scheduler parse the same few quantities of every pod and node over and over."""
    m = _QUANTITY.match(value.strip())
    if not m:
        raise ValueError(QUANTITY_ERROR)
    number, suffix = m.group(1), m.group(2)
    if not _NUMBER.match(number):
        raise ValueError(QUANTITY_ERROR)
    return Fraction(number) * _multiplier(suffix)


def detect_format(value: str) -> str:
    """The format upstream keeps for a parsed string: BinarySI, DecimalSI or DecimalExponent."""
    m = _QUANTITY.match(value.strip())
    suffix = m.group(2) if m else ""
    if suffix in _BINARY:
        return "BinarySI"
    if suffix[:1] in ("e", "E") and suffix not in _DECIMAL:
        return "DecimalExponent"
    return "DecimalSI"


def cpu_millis(value: QuantityLike) -> int:
    """``Quantity.MilliValue()``: milli-units, rounded up."""
    return math.ceil(parse_quantity(value) * 1000)


def value_int(value: QuantityLike) -> int:
    """``Quantity.Value()``: whole units, rounded up (bytes for memory)."""
    return math.ceil(parse_quantity(value))


def _round_up_nano(value: Fraction) -> Fraction:
    scaled = value * 10**9
    if scaled.denominator == 1:
        return value
    return Fraction(math.ceil(scaled), 10**9)


def _format_decimal(value: Fraction, exponent_style: bool) -> str:
    value = _round_up_nano(value)
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    mag = abs(value)
    # Scale to an integer in nano units, then take as many factors of 1000 out as possible.
    nanos = int(mag * 10**9)
    exp = -9
    while nanos % 1000 == 0 and exp < 18:
        nanos //= 1000
        exp += 3
    if exponent_style:
        return f"{sign}{nanos}" + (f"e{exp}" if exp else "")
    return f"{sign}{nanos}{_DECIMAL_BY_EXP[exp]}"


def _format_binary(value: Fraction) -> str | None:
    if value.denominator != 1 or -1024 < value < 1024:
        return None
    sign = "-" if value < 0 else ""
    n = abs(int(value))
    exp = 0
    while n % 1024 == 0 and exp < 60:
        n //= 1024
        exp += 10
    return f"{sign}{n}{_BINARY_BY_EXP.get(exp, '') if exp else ''}"


def format_quantity(value: QuantityLike, kind: str = "DecimalSI") -> str:
    """Canonical string for a value. ``kind``: DecimalSI | BinarySI | DecimalExponent
    (aliases ``cpu``/``decimal``, ``memory``/``binary``).

    BinarySI falls back to DecimalSI for fractions and values under 1024, as upstream.
    """
    v = parse_quantity(value)
    fmt = {"cpu": "DecimalSI", "decimal": "DecimalSI", "memory": "BinarySI",
           "binary": "BinarySI", "exponent": "DecimalExponent"}.get(kind, kind)
    if fmt == "BinarySI":
        out = _format_binary(v)
        return out if out is not None else _format_decimal(v, False)
    if fmt == "DecimalExponent":
        return _format_decimal(v, True)
    if fmt == "DecimalSI":
        return _format_decimal(v, False)
    raise ValueError(f"unknown quantity format {kind!r}")


def canonicalize(value: str) -> str:
    """Re-serialise a quantity string the way the API server stores it (``1000m`` -> ``1``)."""
    return format_quantity(parse_quantity(value), detect_format(value))


# --- resource lists --------------------------------------------------------------------


def to_resource_list(resources: Mapping[str, QuantityLike] | None) -> ResourceList:
    """Parse a ``{name: quantity}`` map (e.g. container requests) into exact values."""
    return {k: parse_quantity(v) for k, v in (resources or {}).items()}


def add(a: Mapping[str, QuantityLike] | None,
        b: Mapping[str, QuantityLike] | None) -> ResourceList:
    out = to_resource_list(a)
    for k, v in to_resource_list(b).items():
        out[k] = out.get(k, Fraction(0)) + v
    return out


def sub(a: Mapping[str, QuantityLike] | None,
        b: Mapping[str, QuantityLike] | None) -> ResourceList:
    out = to_resource_list(a)
    for k, v in to_resource_list(b).items():
        out[k] = out.get(k, Fraction(0)) - v
    return out


def max_of(a: Mapping[str, QuantityLike] | None,
           b: Mapping[str, QuantityLike] | None) -> ResourceList:
    """Per-resource maximum (how init containers combine)."""
    out = to_resource_list(a)
    for k, v in to_resource_list(b).items():
        if k not in out or v > out[k]:
            out[k] = v
    return out


def insufficient(request: Mapping[str, QuantityLike] | None,
                 available: Mapping[str, QuantityLike] | None) -> list[str]:
    """Names of the requested resources (non-zero) that ``available`` cannot cover."""
    req = to_resource_list(request)
    avail = to_resource_list(available)
    return sorted(k for k, v in req.items() if v > 0 and v > avail.get(k, Fraction(0)))


def fits(request: Mapping[str, QuantityLike] | None,
         available: Mapping[str, QuantityLike] | None) -> bool:
    return not insufficient(request, available)


def format_resource_list(resources: Mapping[str, QuantityLike]) -> dict[str, str]:
    """Serialise values: cpu-like in DecimalSI, memory/storage in BinarySI."""
    out = {}
    for k, v in resources.items():
        binary = k in ("memory", "ephemeral-storage", "storage") or k.startswith("hugepages-")
        out[k] = format_quantity(v, "BinarySI" if binary else "DecimalSI")
    return out
