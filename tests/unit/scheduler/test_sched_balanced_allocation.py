"""NodeResourcesBalancedAllocation and ImageLocality scores."""

from tinykube.scheduler.framework import SKIP, CycleState
from tinykube.scheduler.nodeinfo import PodInfo
from tinykube.scheduler.plugins.balanced_allocation import (NodeResourcesBalancedAllocation,
                                                            balanced_score)
from tinykube.scheduler.plugins.image_locality import ImageLocality, normalized_image_name
from tinykube.scheduler.testutil import make_node, make_pod, node_info

MB = 1024 * 1024


def test_balanced_prefers_even_usage():
    plugin = NodeResourcesBalancedAllocation()
    pod = PodInfo(make_pod(cpu="1", memory="1Gi"))
    even = node_info(make_node("e", cpu="4", memory="4Gi"))
    skewed = node_info(make_node("s", cpu="4", memory="4Gi"), make_pod("x", cpu="2"))
    assert plugin.score(CycleState(), pod, even) == 100
    assert plugin.score(CycleState(), pod, skewed) == 75  # 0.75 vs 0.25: std 0.25
    assert balanced_score([0.5, 0.5, 0.5]) == 100


def test_image_names_are_normalized():
    assert normalized_image_name("nginx") == "docker.io/library/nginx:latest"
    assert normalized_image_name("me/app:1") == "docker.io/me/app:1"
    assert normalized_image_name("registry.local:5000/app") == "registry.local:5000/app:latest"


def test_image_locality_prefers_nodes_with_the_image():
    image = {"names": ["docker.io/library/nginx:latest"], "sizeBytes": 500 * MB}
    nodes = [node_info(make_node("has", images=[image])), node_info(make_node("lacks"))]
    plugin = ImageLocality()
    state = CycleState()
    pod = PodInfo(make_pod(image="nginx"))
    assert plugin.pre_score(state, pod, nodes) is None
    assert plugin.score(state, pod, nodes[0]) > plugin.score(state, pod, nodes[1]) == 0
    other = PodInfo(make_pod(image="redis"))
    assert plugin.pre_score(CycleState(), other, nodes) is SKIP
