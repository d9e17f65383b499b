"""Continue tokens and selector compilation."""

from __future__ import annotations

import pytest

from tinykube.api.errors import ApiError
from tinykube.api.kinds import lookup
from tinykube.apiserver.listing import ContinueToken, Selection
from tinykube.apiserver.registry import strategy_for

PODS = lookup("", "v1", "pods")


def test_continue_token_round_trip():
    token = ContinueToken(42, "default/pod-7")
    decoded = ContinueToken.decode(token.encode())
    assert decoded == token


@pytest.mark.parametrize("bad", ["", "!!!", "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ", "bm90IGpzb24"])
def test_bad_continue_tokens_are_400(bad):
    with pytest.raises(ApiError) as err:
        ContinueToken.decode(bad)
    assert err.value.code == 400


def test_selection_filters_labels_and_fields():
    selection = Selection.parse(strategy_for(PODS), "app=web", "spec.nodeName=n1")
    match = selection.predicate()
    pod = {"metadata": {"name": "p", "labels": {"app": "web"}}, "spec": {"nodeName": "n1"}}
    assert match(pod)
    assert not match({**pod, "spec": {"nodeName": "n2"}})
    assert not match({**pod, "metadata": {"name": "p", "labels": {}}})


def test_empty_selection_is_the_fast_path():
    assert Selection.parse(strategy_for(PODS), "", "").predicate() is None


def test_unsupported_field_is_400():
    with pytest.raises(ApiError) as err:
        Selection.parse(strategy_for(PODS), "", "spec.bogus=x")
    assert err.value.code == 400 and err.value.message == "field label not supported: spec.bogus"
