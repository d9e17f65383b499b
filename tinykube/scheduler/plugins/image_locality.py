"""ImageLocality: prefer nodes that already hold the pod's container images, weighted by
image size and by how widely the image is spread (so one node is not overloaded)."""

from __future__ import annotations

from typing import Any

from tinykube.scheduler.framework import MAX_NODE_SCORE, SKIP, CycleState, Status
from tinykube.scheduler.nodeinfo import NodeInfo, PodInfo

NAME = "ImageLocality"
MB = 1024 * 1024
MIN_THRESHOLD = 23 * MB
MAX_CONTAINER_THRESHOLD = 1000 * MB


def normalized_image_name(name: str) -> str:
    """``nginx`` -> ``docker.io/library/nginx:latest`` (how nodes report image names)."""
    last = name.rsplit("/", 1)[-1]
    if ":" not in last and "@" not in last:
        name += ":latest"
    first, sep, _ = name.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost"):
        name = ("docker.io/library/" if not sep else "docker.io/") + name
    return name


def scaled_sum(images: list[str], node: NodeInfo, spread: dict[str, int],
               total_nodes: int) -> int:
    total = 0
    for image in images:
        size = node.images.get(image)
        if size is not None:
            total += int(size * spread.get(image, 0) / total_nodes)
    return total


def calculate_priority(sum_scores: int, num_containers: int) -> int:
    max_threshold = MAX_CONTAINER_THRESHOLD * num_containers
    sum_scores = min(max(sum_scores, MIN_THRESHOLD), max_threshold)
    return MAX_NODE_SCORE * (sum_scores - MIN_THRESHOLD) // (max_threshold - MIN_THRESHOLD)


class ImageLocality:
    name = NAME

    def __init__(self, handle: Any = None) -> None:
        self.handle = handle

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status | None:
        cache = getattr(self.handle, "cache", None)
        if cache is not None and not cache.nodes_with_images:
            return SKIP  # no node reports images: every node would score 0
        images = [normalized_image_name(c["image"]) for c in pod.spec.get("containers") or ()
                  if c.get("image")]
        all_nodes = self.handle.cache.node_list() if self.handle is not None else nodes
        spread = {img: sum(1 for n in all_nodes if img in n.images) for img in images}
        if not any(spread.values()):
            return SKIP  # no node holds any of them: every node would score 0
        state[NAME] = (images, spread, max(len(all_nodes), 1))
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        images, spread, total = state[NAME]
        return calculate_priority(scaled_sum(images, node, spread, total), len(images))


def new(args: dict[str, Any], handle: Any) -> ImageLocality:
    return ImageLocality(handle)
