"""kube-proxy's iptables mode: pure rule generation (`rules`), the restore text
(`restore`), and running `iptables`/`iptables-restore` (`runner`)."""
