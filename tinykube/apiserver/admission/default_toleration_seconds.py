"""DefaultTolerationSeconds: pods tolerate not-ready/unreachable nodes for 300 s, so the
node lifecycle controller evicts them five minutes after their node goes away."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinykube.apiserver.admission import Attributes

if TYPE_CHECKING:
    from tinykube.apiserver.server import APIServer

DEFAULT_SECONDS = 300
TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")


class DefaultTolerationSeconds:
    name = "DefaultTolerationSeconds"

    def __init__(self, server: "APIServer"):
        self.server = server

    async def admit(self, attrs: Attributes) -> None:
        pod = attrs.created_pod()
        if pod is None:
            return
        spec = pod.setdefault("spec", {})
        tolerations = list(spec.get("tolerations") or [])
        for taint in TAINTS:
            if any(_covers(t, taint) for t in tolerations):
                continue
            tolerations.append({"key": taint, "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": DEFAULT_SECONDS})
        spec["tolerations"] = tolerations


def _covers(toleration: dict, taint_key: str) -> bool:
    """A toleration already deciding NoExecute behaviour for this taint key."""
    effect = toleration.get("effect") or ""
    if effect not in ("", "NoExecute"):
        return False
    key = toleration.get("key") or ""
    return key == taint_key or (not key and toleration.get("operator") == "Exists")
