"""Shared pytest configuration: fixtures come from ``tinykube.testing`` plugins."""

pytest_plugins: list[str] = [
    "tinykube.testing.apiserver",
    "tinykube.testing.etcd",
    "tinykube.testing.kubelet",
    "tinykube.testing.podnet",
]
