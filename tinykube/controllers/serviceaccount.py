"""The serviceaccount controller: every active namespace has a ``default`` ServiceAccount.

Pods that name no service account run as ``default``, and the ServiceAccount admission
plugin rejects pods whose account is missing, so it is recreated whenever it is deleted.
"""

from __future__ import annotations

from typing import Any

from tinykube.api import meta
from tinykube.api.errors import ApiError

from tinykube.controllers.base import BaseController, ControllerContext

Obj = dict[str, Any]
NAME = "serviceaccount-controller"
DEFAULT_ACCOUNTS = ("default",)


class ServiceAccountController(BaseController):
    """Creates the default ServiceAccount in each namespace."""

    def __init__(self, ctx: ControllerContext, workers: int = 1) -> None:
        super().__init__(ctx, NAME, workers)
        self.ns_informer = ctx.informers.informer("namespaces")
        self.sa_informer = ctx.informers.informer("serviceaccounts")
        self.accounts = ctx.client.resource("serviceaccounts")
        self.ns_informer.add_handlers(on_add=self._ns_changed,
                                      on_update=lambda old, new: self._ns_changed(new))
        self.sa_informer.add_handlers(on_delete=self._sa_deleted)

    def _ns_changed(self, ns: Obj) -> None:
        self.enqueue(meta.name(ns))

    def _sa_deleted(self, sa: Obj) -> None:
        if meta.name(sa) in DEFAULT_ACCOUNTS:
            self.enqueue(meta.namespace(sa))

    async def sync(self, namespace: str) -> None:
        ns = self.ns_informer.cache.get(namespace)
        if ns is None or meta.deletion_timestamp(ns) is not None or \
                (ns.get("status") or {}).get("phase") == "Terminating":
            return
        for name in DEFAULT_ACCOUNTS:
            if self.sa_informer.cache.get(f"{namespace}/{name}") is not None:
                continue
            try:
                await self.accounts.create({"apiVersion": "v1", "kind": "ServiceAccount",
                                            "metadata": {"name": name}}, namespace=namespace)
            except ApiError as err:
                # AlreadyExists: the cache lags; Forbidden: the namespace began terminating.
                if err.code not in (409, 403, 404):
                    raise


def new_serviceaccount_controller(ctx: ControllerContext) -> ServiceAccountController:
    return ServiceAccountController(ctx)
