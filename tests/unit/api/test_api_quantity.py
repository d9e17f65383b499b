"""Quantities parse exactly and format canonically."""

from fractions import Fraction

import pytest
from hypothesis import given, strategies as st

from tinykube.api import quantity as q


@pytest.mark.parametrize("text,value", [
    ("100m", Fraction(1, 10)), ("1Gi", 2**30), ("2", 2), ("1.5", Fraction(3, 2)),
    ("1e3", 1000), ("2E-1", Fraction(1, 5)), ("1E", 10**18), ("5n", Fraction(5, 10**9)),
    ("3u", Fraction(3, 10**6)), ("1k", 1000), ("1M", 10**6), ("1T", 10**12), ("1P", 10**15),
    ("1Ki", 1024), ("1Ei", 2**60), ("-1k", -1000), (".5", Fraction(1, 2)), ("+2", 2),
])
def test_parse(text: str, value) -> None:
    assert q.parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1.5.3", "1Z", "1KiB", "Gi", "1e", "--1"])
def test_parse_invalid(text: str) -> None:
    with pytest.raises(ValueError, match="quantities must match the regular expression"):
        q.parse_quantity(text)


@pytest.mark.parametrize("value,kind,want", [
    (Fraction(1, 10), "DecimalSI", "100m"), (1000, "DecimalSI", "1k"), (1500, "DecimalSI", "1500"),
    (2**30, "BinarySI", "1Gi"), (129_000_000, "BinarySI", "129000000"), (100, "BinarySI", "100"),
    (Fraction(1, 2), "BinarySI", "500m"), (0, "DecimalSI", "0"), (1000, "DecimalExponent", "1e3"),
    (Fraction(1, 10**10), "DecimalSI", "1n"),
])
def test_format(value, kind: str, want: str) -> None:
    assert q.format_quantity(value, kind) == want


def test_canonicalize_keeps_format() -> None:
    assert q.canonicalize("1000m") == "1"
    assert q.canonicalize("1024Mi") == "1Gi"
    assert q.canonicalize("0.5") == "500m"


def test_cpu_millis_rounds_up() -> None:
    assert q.cpu_millis("250m") == 250 and q.cpu_millis("1n") == 1 and q.cpu_millis(2) == 2000


def test_resource_list_arithmetic() -> None:
    total = q.add({"cpu": "100m", "memory": "1Gi"}, {"cpu": "1", "nvidia.com/gpu": "1"})
    assert total == {"cpu": Fraction(11, 10), "memory": 2**30, "nvidia.com/gpu": 1}
    assert q.sub(total, {"cpu": "100m"})["cpu"] == 1
    assert q.fits({"cpu": "1"}, {"cpu": "1", "memory": "1"})
    assert q.insufficient({"cpu": "2", "memory": "1Gi", "x": "0"}, {"cpu": "1"}) == ["cpu", "memory"]
    assert q.format_resource_list({"cpu": Fraction(1, 2), "memory": 2**20}) == {
        "cpu": "500m", "memory": "1Mi"}


@given(st.integers(min_value=-10**15, max_value=10**15), st.integers(min_value=0, max_value=9),
       st.sampled_from(["DecimalSI", "BinarySI", "DecimalExponent"]))
def test_format_parse_round_trip(mantissa: int, scale: int, kind: str) -> None:
    value = Fraction(mantissa, 10**scale)
    assert q.parse_quantity(q.format_quantity(value, kind)) == value
