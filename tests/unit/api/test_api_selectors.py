"""Label, field and node selectors behave as upstream's."""

import pytest
from hypothesis import given, settings, strategies as st

from tinykube.api.selectors import (FieldSelector, LabelSelector, node_selector_matches,
                                    node_selector_term_matches, object_fields)


@pytest.mark.parametrize("text,labels,want", [
    ("a=b", {"a": "b"}, True),
    ("a==b", {"a": "c"}, False),
    ("a!=b", {}, True),
    ("a!=b", {"a": "b"}, False),
    ("a in (x, y)", {"a": "y"}, True),
    ("a notin (x)", {}, True),
    ("a notin (x)", {"a": "x"}, False),
    ("a", {"a": ""}, True),
    ("!a", {"a": ""}, False),
    ("a>3", {"a": "4"}, True),
    ("a<3", {"a": "4"}, False),
    ("a=b,c", {"a": "b"}, False),
    ("", {"x": "y"}, True),
    ("a=", {"a": ""}, True),
])
def test_label_selector_matches(text: str, labels: dict, want: bool) -> None:
    assert LabelSelector.parse(text).matches(labels) is want


@pytest.mark.parametrize("text", ["a in ()", "a,", "a=b c", "a in x", "=b", "x/y/z=1", "a>b",
                                  "A_/b=c", "a=b@"])
def test_label_selector_parse_errors(text: str) -> None:
    with pytest.raises(ValueError):
        LabelSelector.parse(text)


def test_from_dict_semantics() -> None:
    assert not LabelSelector.from_dict(None).matches({})
    assert LabelSelector.from_dict({}).matches({"a": "b"})
    assert LabelSelector.from_dict({}).empty
    sel = LabelSelector.from_dict({"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["fe", "be"]},
        {"key": "legacy", "operator": "DoesNotExist"}]})
    assert sel.matches({"app": "web", "tier": "fe"})
    assert not sel.matches({"app": "web", "tier": "fe", "legacy": "1"})
    assert str(sel) == "app=web,!legacy,tier in (be,fe)"
    assert LabelSelector.from_dict({"app": "web"}).matches({"app": "web"})
    with pytest.raises(ValueError):
        LabelSelector.from_dict({"matchExpressions": [{"key": "a", "operator": "Bogus"}]})


_names = st.builds(lambda head, mid, tail: head + mid + tail,
                   st.sampled_from("abcxyz019"), st.text("abz09.-_", max_size=5),
                   st.sampled_from(["", "a", "9"])).filter(
    lambda s: s[-1] not in ".-_" and s not in ("in", "notin"))
_req = st.one_of(
    st.tuples(_names, st.sampled_from(["=", "!=", "=="]), _names).map(lambda t: f"{t[0]}{t[1]}{t[2]}"),
    st.tuples(_names, st.sampled_from(["in", "notin"]), st.lists(_names, min_size=1, max_size=3))
    .map(lambda t: f"{t[0]} {t[1]} ({','.join(t[2])})"),
    _names, _names.map(lambda n: "!" + n))


@settings(max_examples=60, deadline=None)
@given(st.lists(_req, min_size=1, max_size=4), st.dictionaries(_names, _names, max_size=4))
def test_label_selector_string_round_trips(reqs: list[str], labels: dict) -> None:
    sel = LabelSelector.parse(",".join(reqs))
    again = LabelSelector.parse(str(sel))
    assert again == sel
    assert again.matches(labels) == sel.matches(labels)


def test_field_selector() -> None:
    sel = FieldSelector.parse("metadata.name=web,spec.nodeName!=,status.phase==Running")
    assert sel.exact("metadata.name") == "web" and sel.exact("spec.nodeName") is None
    assert sel.matches({"metadata.name": "web", "spec.nodeName": "n1", "status.phase": "Running"})
    assert not sel.matches({"metadata.name": "web", "status.phase": "Running"})
    escaped = FieldSelector.parse(r"a=b\,c")
    assert escaped.exact("a") == "b,c" and str(escaped) == r"a=b\,c"
    assert FieldSelector.parse("").empty
    with pytest.raises(ValueError):
        FieldSelector.parse("metadata.name")


def test_object_fields_for_pods_and_nodes() -> None:
    pod = {"metadata": {"name": "p", "namespace": "d"}, "spec": {"nodeName": "n1"},
           "status": {"phase": "Running"}}
    fields = object_fields("Pod", pod)
    assert fields["spec.nodeName"] == "n1" and fields["status.phase"] == "Running"
    assert fields["metadata.namespace"] == "d"
    assert object_fields("Node", {"metadata": {"name": "n"}})["spec.unschedulable"] == "false"


NODE = {"metadata": {"name": "n1", "labels": {"zone": "a", "cores": "8"}}}


@pytest.mark.parametrize("expr,want", [
    ({"key": "zone", "operator": "In", "values": ["a", "b"]}, True),
    ({"key": "zone", "operator": "NotIn", "values": ["a"]}, False),
    ({"key": "gpu", "operator": "NotIn", "values": ["x"]}, True),
    ({"key": "zone", "operator": "Exists"}, True),
    ({"key": "gpu", "operator": "DoesNotExist"}, True),
    ({"key": "cores", "operator": "Gt", "values": ["4"]}, True),
    ({"key": "cores", "operator": "Lt", "values": ["4"]}, False),
    ({"key": "cores", "operator": "Gt", "values": ["x"]}, False),
])
def test_node_selector_term_expressions(expr: dict, want: bool) -> None:
    assert node_selector_term_matches({"matchExpressions": [expr]}, NODE) is want


def test_node_selector_fields_and_or_of_terms() -> None:
    by_name = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}
    assert node_selector_term_matches(by_name, NODE)
    assert not node_selector_term_matches({}, NODE)
    other = {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z"]}]}
    assert node_selector_matches({"nodeSelectorTerms": [other, by_name]}, NODE)
    assert not node_selector_matches({"nodeSelectorTerms": [other]}, NODE)
    assert not node_selector_matches({"nodeSelectorTerms": []}, NODE)
