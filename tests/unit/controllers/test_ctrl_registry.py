"""The --controllers list, aliases and the CLI's flag parsing."""

from __future__ import annotations

import click
import pytest

from tinykube.cli.controller_manager import parse_bool, parse_duration
from tinykube.controllers.registry import CONTROLLERS, enabled_controllers


def test_star_enables_everything_and_minus_disables():
    assert set(enabled_controllers(["*"])) == set(CONTROLLERS)
    names = enabled_controllers(["*", "-garbagecollector", "-deployment-controller"])
    assert "garbage-collector-controller" not in names
    assert "deployment-controller" not in names
    assert "replicaset-controller" in names


def test_names_and_aliases():
    assert list(enabled_controllers(["replicaset", "endpointslice-controller"])) == [
        "replicaset-controller", "endpointslice-controller"]
    assert enabled_controllers([]) == {}


def test_unknown_controller_is_rejected():
    with pytest.raises(ValueError, match='"nope" is not in the list of known controllers'):
        enabled_controllers(["nope"])


def test_upstream_names_are_registered():
    for name in ("replicaset-controller", "deployment-controller",
                 "garbage-collector-controller", "namespace-controller",
                 "serviceaccount-controller", "endpoints-controller",
                 "endpointslice-controller", "node-lifecycle-controller", "job-controller",
                 "cronjob-controller", "daemonset-controller", "statefulset-controller",
                 "resourcequota-controller", "persistentvolume-binder-controller",
                 "ttl-after-finished-controller", "pod-garbage-collector-controller",
                 "node-ipam-controller", "root-ca-certificate-publisher-controller",
                 "taint-eviction-controller", "replicationcontroller-controller"):
        assert name in CONTROLLERS


@pytest.mark.parametrize("text,seconds", [("40s", 40), ("1m30s", 90), ("2", 2), ("500ms", 0.5),
                                          ("1h", 3600)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_bad_flags():
    with pytest.raises(click.BadParameter):
        parse_duration("forty")
    with pytest.raises(click.BadParameter):
        parse_bool("maybe")
    assert parse_bool("false") is False and parse_bool("true") is True


def test_event_spam_filter_allows_a_burst_then_one_per_refill():
    from tinykube.controllers.base import SpamFilter

    now = [0.0]
    spam = SpamFilter(burst=3, refill_seconds=10, clock=lambda: now[0])
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
          "metadata": {"name": "a", "namespace": "d", "uid": "u"}}
    other = {**rs, "metadata": {**rs["metadata"], "uid": "v"}}
    assert [spam.allow(rs) for _ in range(4)] == [True, True, True, False]
    assert spam.allow(other)  # per object
    now[0] = 10.0
    assert spam.allow(rs) and not spam.allow(rs)
