"""Which nodes metrics.k8s.io scrapes, and whose answers it keeps."""

from __future__ import annotations

from tinykube.apiserver.metricsapi import Scraper


def node(name: str, port: int | None) -> dict:
    status = {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}]}
    if port is not None:
        status["daemonEndpoints"] = {"kubeletEndpoint": {"Port": port}}
    return {"metadata": {"name": name}, "status": status}


async def test_nodes_without_a_kubelet_server_or_answering_as_another_are_left_out():
    asked = []

    class Fake(Scraper):
        async def summary(self, n):
            asked.append(n["metadata"]["name"])
            # every node's address reaches the one real kubelet, "real"
            return {"node": {"nodeName": "real"}} if n["metadata"]["name"] != "down" else None

    scraper = Fake(server=None)
    nodes = [node("real", 10250), node("hollow-0", 0), node("impostor", None), node("down", 10250)]
    found = await scraper.summaries(nodes)
    assert asked == ["real", "impostor", "down"]  # hollow nodes announce port 0: no kubelet to ask
    assert [n["metadata"]["name"] for n, _ in found] == ["real"]
