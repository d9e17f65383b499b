"""System metadata: what the server, not the client, decides about an object.

uid, creationTimestamp, generated names and the immutable parts of metadata across
updates, as kube-apiserver's rest.BeforeCreate/BeforeUpdate fill and check them.
"""

from __future__ import annotations

import random
import secrets

from tinykube.api import errors, meta
from tinykube.api.errors import Cause
from tinykube.api.kinds import ResourceInfo

# upstream's utilrand alphabet: no vowels (no words), no look-alikes (0/o, 1/l, 3/e).
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
GENERATED_SUFFIX_LENGTH = 5
MAX_GENERATE_NAME_PREFIX = 58  # 63 - 5

SERVER_OWNED = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                "selfLink", "resourceVersion")


# Names need to be unlikely to collide, not unpredictable (upstream uses math/rand too);
# one seeded generator avoids a getrandom() system call per character.
_RANDOM = random.Random(secrets.randbits(64))


def random_suffix(length: int = GENERATED_SUFFIX_LENGTH) -> str:
    return "".join(_RANDOM.choices(NAME_ALPHABET, k=length))


def generated_name(prefix: str) -> str:
    return prefix[:MAX_GENERATE_NAME_PREFIX] + random_suffix()


def check_kind(info: ResourceInfo, obj: dict) -> None:
    """The body's apiVersion/kind must be the URL's (defaulted when absent)."""
    kind = obj.get("kind")
    api_version = obj.get("apiVersion")
    if kind and kind != info.kind:
        raise errors.bad_request(f"the object provided is unrecognized (must be of type "
                                 f"{info.kind}): {kind} is not {info.kind}")
    if api_version and api_version != info.api_version:
        raise errors.bad_request(f"the API version in the data ({api_version}) does not match "
                                 f"the expected API version ({info.api_version})")
    rest = {k: obj.pop(k) for k in list(obj) if k not in ("kind", "apiVersion")}
    obj.pop("kind", None)
    obj.pop("apiVersion", None)
    obj["kind"] = info.kind
    obj["apiVersion"] = info.api_version
    obj.update(rest)


def check_namespace(info: ResourceInfo, obj: dict, path_namespace: str) -> None:
    """Body namespace defaults to the URL's; a different one is a 400 (as upstream)."""
    md = meta.ensure_metadata(obj)
    if not info.namespaced:
        md.pop("namespace", None)
        return
    body_ns = md.get("namespace") or ""
    if body_ns and body_ns != path_namespace:
        raise errors.bad_request("the namespace of the provided object does not match the "
                                 "namespace sent on the request")
    md["namespace"] = path_namespace


def check_name(info: ResourceInfo, obj: dict, path_name: str) -> None:
    """An update's body name must be the URL's (defaulted when absent)."""
    md = meta.ensure_metadata(obj)
    body_name = md.get("name") or ""
    if body_name and body_name != path_name:
        raise errors.bad_request(f"the name of the object ({body_name}) does not match the "
                                 f"name on the URL ({path_name})")
    md["name"] = path_name


def fill_for_create(info: ResourceInfo, obj: dict) -> None:
    """uid, creationTimestamp and (for generateName) the name; clears server-owned fields."""
    md = meta.ensure_metadata(obj)
    for key in SERVER_OWNED:
        md.pop(key, None)
    if not md.get("name"):
        prefix = md.get("generateName") or ""
        if not prefix:
            raise errors.invalid(info, "", [Cause.required(
                "metadata.name", "name or generateName is required")])
        md["name"] = generated_name(prefix)
    md["uid"] = meta.new_uid()
    md["creationTimestamp"] = meta.now()


def carry_for_update(info: ResourceInfo, new: dict, old: dict) -> None:
    """Keep what an update may not change: uid, creation and deletion timestamps."""
    md = meta.ensure_metadata(new)
    old_md = meta.metadata(old)
    if md.get("uid") and md["uid"] != old_md.get("uid"):
        raise errors.conflict(info, meta.name(old),
                              f"Precondition failed: UID in precondition: {md['uid']}, "
                              f"UID in object meta: {old_md.get('uid')}")
    for key in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
        if key in old_md:
            md[key] = old_md[key]
        else:
            md.pop(key, None)
    md.pop("selfLink", None)
    if "generateName" in old_md and "generateName" not in md:
        md["generateName"] = old_md["generateName"]
