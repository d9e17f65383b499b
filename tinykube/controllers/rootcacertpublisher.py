"""The root-ca-cert-publisher: a ``kube-root-ca.crt`` ConfigMap in every namespace.

Pods' projected service-account volumes mount its ``ca.crt`` to verify the API server.
The content is the cluster CA the manager was given (``--root-ca-file``, else the CA of
its kubeconfig); edits and deletions are reverted.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from tinykube.api import meta
from tinykube.api.errors import ApiError

from tinykube.controllers.base import BaseController, ControllerContext

log = logging.getLogger(__name__)

Obj = dict[str, Any]
NAME = "root-ca-certificate-publisher-controller"
CONFIGMAP = "kube-root-ca.crt"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when "
               "using internal endpoints such as the internal service IP or "
               "kubernetes.default.svc. No other usage is guaranteed across distributions "
               "of Kubernetes clusters.")


class RootCACertPublisher(BaseController):
    """Keeps ``kube-root-ca.crt`` equal to the cluster CA in each namespace."""

    def __init__(self, ctx: ControllerContext, ca_pem: str | None) -> None:
        super().__init__(ctx, NAME, 1)
        self.ca_pem = ca_pem
        self.ns_informer = ctx.informers.informer("namespaces")
        self.cm_informer = ctx.informers.informer("configmaps")
        self.configmaps = ctx.client.resource("configmaps")
        self.ns_informer.add_handlers(on_add=lambda ns: self.enqueue(meta.name(ns)),
                                      on_update=lambda old, new: self.enqueue(meta.name(new)))
        self.cm_informer.add_handlers(on_update=lambda old, new: self._cm_changed(new),
                                      on_delete=self._cm_changed)
        if ca_pem is None:
            log.info("%s: no cluster CA known; nothing to publish", NAME)

    def _cm_changed(self, cm: Obj) -> None:
        if meta.name(cm) == CONFIGMAP:
            self.enqueue(meta.namespace(cm))

    def desired(self) -> Obj:
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": CONFIGMAP,
                             "annotations": {"kubernetes.io/description": DESCRIPTION}},
                "data": {"ca.crt": self.ca_pem}}

    async def sync(self, namespace: str) -> None:
        if self.ca_pem is None:
            return
        ns = self.ns_informer.cache.get(namespace)
        if ns is None or meta.deletion_timestamp(ns) is not None:
            return
        current = self.cm_informer.cache.get(f"{namespace}/{CONFIGMAP}")
        try:
            if current is None:
                await self.configmaps.create(self.desired(), namespace=namespace)
            elif (current.get("data") or {}) != {"ca.crt": self.ca_pem} or \
                    DESCRIPTION != meta.annotations(current).get("kubernetes.io/description"):
                body = copy.deepcopy(current)
                body["data"] = {"ca.crt": self.ca_pem}
                body["metadata"].setdefault("annotations", {})[
                    "kubernetes.io/description"] = DESCRIPTION
                await self.configmaps.update(body)
        except ApiError as err:
            if err.code not in (409, 403, 404):
                raise


def new_root_ca_cert_publisher(ctx: ControllerContext) -> RootCACertPublisher:
    ca = getattr(ctx.config, "root_ca_data", None)
    return RootCACertPublisher(ctx, ca.decode() if isinstance(ca, bytes) else ca)
