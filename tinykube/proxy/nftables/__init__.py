"""kube-proxy's nftables mode: one private table, verdict maps keyed by
(IP, protocol, port) instead of one rule per Service, applied in atomic `nft -f`
transactions that touch only what changed (`rules` is pure, `proxier` applies)."""
