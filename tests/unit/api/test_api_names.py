"""Name syntax checks carry upstream's wording."""

import pytest

from tinykube.api import names


@pytest.mark.parametrize("value,ok", [("a", True), ("a-b.c", True), ("A", False), ("-a", False),
                                      ("a" * 254, False), ("a..b", False)])
def test_dns1123_subdomain(value: str, ok: bool) -> None:
    assert (names.is_dns1123_subdomain(value) == []) is ok


def test_label_and_dns1035() -> None:
    assert names.is_dns1123_label("a.b") == [names.DNS1123_LABEL_MSG]
    assert names.is_dns1123_label("a" * 64)[0] == "must be no more than 63 characters"
    assert names.is_dns1035_label("1a") == [names.DNS1035_LABEL_MSG]
    assert names.is_dns1035_label("a1") == []


@pytest.mark.parametrize("key,ok", [("app", True), ("example.com/app", True),
                                    ("app.kubernetes.io/name", True), ("a/b/c", False),
                                    ("/a", False), ("Example.com/a", False), ("a b", False),
                                    ("a" * 64, False)])
def test_qualified_name(key: str, ok: bool) -> None:
    assert (names.is_qualified_name(key) == []) is ok


def test_label_values_and_config_keys() -> None:
    assert names.is_valid_label_value("") == []
    assert names.is_valid_label_value("a_b.c-d") == []
    assert names.is_valid_label_value("-a") == [names.LABEL_VALUE_MSG]
    assert names.is_config_map_key("..x") == ["must not start with '..'"]
    assert names.is_config_map_key("key.name") == []
    assert names.is_valid_port_num(0) == ["must be between 1 and 65535, inclusive"]
    assert names.is_valid_port_num(True) != []
