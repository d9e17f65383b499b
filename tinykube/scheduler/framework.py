"""The scheduling framework: statuses, cycle state and one Protocol per extension point.

As in upstream's ``kube-scheduler/framework``, a plugin is any object with a ``name`` that
implements only the hooks it needs. Outcomes are values: a hook returns ``None`` for success
or a ``Status`` (Unschedulable, UnschedulableAndUnresolvable, Error, Skip, Wait);
exceptions are reserved for faults. Score hooks return a plain int (0..MAX_NODE_SCORE after
normalisation) because they run for every feasible node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from tinykube.scheduler.nodeinfo import NodeInfo, PodInfo

MAX_NODE_SCORE = 100
MIN_NODE_SCORE = 0


class Code(IntEnum):
    SUCCESS = 0
    ERROR = 1
    UNSCHEDULABLE = 2
    UNSCHEDULABLE_AND_UNRESOLVABLE = 3
    WAIT = 4
    SKIP = 5


@dataclass(frozen=True, slots=True)
class Status:
    """A non-success outcome of one plugin hook: its code, reasons and the plugin's name."""

    code: Code
    reasons: tuple[str, ...] = ()
    plugin: str = ""

    @property
    def message(self) -> str:
        return ", ".join(self.reasons)

    @property
    def is_rejection(self) -> bool:
        return self.code in (Code.UNSCHEDULABLE, Code.UNSCHEDULABLE_AND_UNRESOLVABLE)

    def with_plugin(self, plugin: str) -> Status:
        return self if self.plugin else Status(self.code, self.reasons, plugin)


def unschedulable(*reasons: str, plugin: str = "") -> Status:
    return Status(Code.UNSCHEDULABLE, reasons, plugin)


def unresolvable(*reasons: str, plugin: str = "") -> Status:
    """Unschedulable in a way preemption cannot fix (e.g. a node selector mismatch)."""
    return Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, reasons, plugin)


def error(message: str, plugin: str = "") -> Status:
    return Status(Code.ERROR, (message,), plugin)


SKIP = Status(Code.SKIP)


class CycleState(dict[str, Any]):
    """Per-pod, per-cycle scratch space: PreFilter/PreScore write, Filter/Score read.

    Keys are the writing plugin's name (or ``"<name>/<what>"``). ``skip_filter`` and
    ``skip_score`` name the plugins whose PreFilter/PreScore returned Skip this cycle.
    """

    def __init__(self) -> None:
        super().__init__()
        self.skip_filter: set[str] = set()
        self.skip_score: set[str] = set()

    def clone(self) -> CycleState:
        copy = CycleState()
        copy.update({k: (v.clone() if hasattr(v, "clone") else v) for k, v in self.items()})
        copy.skip_filter = set(self.skip_filter)
        copy.skip_score = set(self.skip_score)
        return copy


@dataclass
class PreFilterResult:
    """PreFilter may narrow the candidates to named nodes (None = all nodes)."""

    node_names: set[str] | None = None

    def merge(self, other: PreFilterResult | None) -> PreFilterResult:
        if other is None or other.node_names is None:
            return self
        if self.node_names is None:
            return PreFilterResult(set(other.node_names))
        return PreFilterResult(self.node_names & other.node_names)


@dataclass
class PostFilterResult:
    nominated_node_name: str = ""


@dataclass
class Diagnosis:
    """Why a pod did not fit: each rejected node's status, and the plugins involved."""

    node_statuses: dict[str, Status] = field(default_factory=dict)
    unschedulable_plugins: set[str] = field(default_factory=set)
    pre_filter_msg: str = ""
    post_filter_msg: str = ""


@runtime_checkable
class Plugin(Protocol):
    name: str


class PreFilterPlugin(Plugin, Protocol):
    def pre_filter(self, state: CycleState, pod: PodInfo,
                   nodes: list[NodeInfo]) -> tuple[PreFilterResult | None, Status | None]:
        """Compute what Filter needs once per cycle; Skip disables this plugin's Filter."""


class PreFilterExtensions(Protocol):
    """Lets preemption ask "what if this pod were (not) on the node" without recomputing."""

    def add_pod(self, state: CycleState, pod: PodInfo, added: PodInfo,
                node: NodeInfo) -> Status | None: ...

    def remove_pod(self, state: CycleState, pod: PodInfo, removed: PodInfo,
                   node: NodeInfo) -> Status | None: ...


class FilterPlugin(Plugin, Protocol):
    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        """None when the pod may run on ``node``; must not mutate the node."""


class PostFilterPlugin(Plugin, Protocol):
    async def post_filter(self, state: CycleState, pod: PodInfo,
                          diagnosis: Diagnosis) -> tuple[PostFilterResult | None, Status | None]:
        """Called only when no node fits (preemption)."""


class PreScorePlugin(Plugin, Protocol):
    def pre_score(self, state: CycleState, pod: PodInfo,
                  nodes: list[NodeInfo]) -> Status | None:
        """Prepare Score for the feasible nodes; Skip disables this plugin's Score."""


class ScorePlugin(Plugin, Protocol):
    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        """A raw score for one feasible node."""


class ScoreExtensions(Protocol):
    def normalize_score(self, state: CycleState, pod: PodInfo,
                        scores: dict[str, int]) -> None:
        """Rescale raw scores in place to MIN_NODE_SCORE..MAX_NODE_SCORE."""


class ReservePlugin(Plugin, Protocol):
    def reserve(self, state: CycleState, pod: PodInfo, node_name: str) -> Status | None: ...

    def unreserve(self, state: CycleState, pod: PodInfo, node_name: str) -> None:
        """Undo reserve; must be idempotent and may be called even if reserve was not."""


class PermitPlugin(Plugin, Protocol):
    def permit(self, state: CycleState, pod: PodInfo,
               node_name: str) -> tuple[Status | None, float]:
        """Approve (None), reject, or Wait with a timeout in seconds."""


class PreBindPlugin(Plugin, Protocol):
    async def pre_bind(self, state: CycleState, pod: PodInfo,
                       node_name: str) -> Status | None: ...


class BindPlugin(Plugin, Protocol):
    async def bind(self, state: CycleState, pod: PodInfo, node_name: str) -> Status | None:
        """Bind the pod, or return Skip to let the next bind plugin do it."""


class PostBindPlugin(Plugin, Protocol):
    def post_bind(self, state: CycleState, pod: PodInfo, node_name: str) -> None: ...


EXTENSION_POINTS: dict[str, str] = {
    # KubeSchedulerConfiguration key -> the method a plugin implements for it
    "preFilter": "pre_filter",
    "filter": "filter",
    "postFilter": "post_filter",
    "preScore": "pre_score",
    "score": "score",
    "reserve": "reserve",
    "permit": "permit",
    "preBind": "pre_bind",
    "bind": "bind",
    "postBind": "post_bind",
}


def default_normalize(scores: dict[str, int], reverse: bool = False) -> None:
    """Scale scores to 0..MAX_NODE_SCORE by the maximum (``helper.DefaultNormalizeScore``)."""
    if not scores:
        return
    top = max(scores.values())
    if top == 0:
        if reverse:
            for name in scores:
                scores[name] = MAX_NODE_SCORE
        return
    for name, value in scores.items():
        scaled = value * MAX_NODE_SCORE // top
        scores[name] = MAX_NODE_SCORE - scaled if reverse else scaled
