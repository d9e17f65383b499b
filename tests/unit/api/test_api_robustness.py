"""Malformed objects never crash the api package: every entry point either returns or
raises ApiError (which the server turns into a Status), never a traceback."""

import copy

from hypothesis import HealthCheck, given, settings, strategies as st

from tinykube.api import apply, decoding, defaults, kinds, patch, tables, validation
from tinykube.api.errors import ApiError

FIELDS = ["metadata", "spec", "status", "name", "namespace", "labels", "containers", "template",
          "selector", "matchLabels", "ports", "port", "image", "replicas", "data", "rules",
          "subsets", "addresses", "strategy", "rollingUpdate", "resources", "limits",
          "requests", "tolerations", "affinity", "conditions", "type", "roleRef", "subjects",
          "jobTemplate", "volumes", "env", "items", "a"]

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 70000) | st.sampled_from(["", "x", "1Gi", "a%"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(FIELDS), inner,
                                                                 max_size=4),
    max_leaves=12)
_objects = st.dictionaries(st.sampled_from(FIELDS), _json, max_size=5)


def _each_kind(obj: dict, fn) -> None:
    for info in kinds.RESOURCES:
        try:
            fn(info, copy.deepcopy(obj))
        except ApiError:
            pass


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_objects)
def test_defaults_validation_and_tables_survive_garbage(obj: dict) -> None:
    def run(info, o):
        defaults.apply_defaults(info, o)
        validation.validate(info, o)
        validation.validate(info, o, copy.deepcopy(o))
        validation.unknown_fields(info, o)
        decoding.decode_error(info, o)
        if not decoding.type_problems(info, o):
            tables.to_table(info, [o])
    _each_kind(obj, run)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_objects, _objects)
def test_patches_and_apply_survive_garbage(obj: dict, doc: dict) -> None:
    def run(info, o):
        patch.strategic_merge_patch(info, o, doc)
        patch.merge_patch(o, doc)
        apply.record_update(info, None, copy.deepcopy(o), "m")
        apply.server_side_apply(info, o, {**doc, "apiVersion": info.api_version,
                                          "kind": info.kind}, "m", force=True)
    _each_kind(obj, run)
