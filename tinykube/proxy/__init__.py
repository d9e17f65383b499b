"""kube-proxy: makes Services reachable on a node.

- `model`: Services and EndpointSlices reduced to `ServicePort` / `Endpoint` values.
- `changes`: the change tracker informer handlers feed; `bounded`: the sync runner
  (minSyncPeriod / syncPeriod as upstream).
- `iptables/`: iptables mode. `rules` computes upstream's chain layout as a pure function,
  `restore` diffs it against what was applied into a partial `iptables-restore --noflush`,
  `proxier` runs syncs, `runner` runs the binaries. `chain_prefix` (default `KUBE-`) lets
  tests own private chains; `cleanup` removes every chain and jump with the prefix.
- `nftables/`: nftables mode: one private table, verdict maps keyed by (IP, protocol,
  port), partial `nft -f` transactions; `cleanup` deletes the table.
- `userspace`: a no-root mode with an asyncio TCP/UDP proxy per service port.
- `health`, `metrics`: :10256 /healthz and /livez, :10249 /metrics (`kubeproxy_*`).
- `server.Proxy(ProxyConfig(...))`: the component; `tinykube proxy` is its CLI.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tinykube.proxy.config import ProxyConfig
    from tinykube.proxy.server import Proxy

__all__ = ["Proxy", "ProxyConfig"]


def __getattr__(name: str) -> Any:
    """`Proxy` and `ProxyConfig` on first use: importing a submodule (`tinykube proxy`
    imports `config` first) does not import the whole proxy."""
    if name == "Proxy":
        from tinykube.proxy.server import Proxy

        return Proxy
    if name == "ProxyConfig":
        from tinykube.proxy.config import ProxyConfig

        return ProxyConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
