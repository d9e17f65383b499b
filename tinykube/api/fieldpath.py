"""Field paths as upstream prints them (k8s.io/apimachinery/pkg/util/validation/field.Path).

``Path("spec").child("containers").index(0).child("image")`` renders as
``spec.containers[0].image``; map keys render as ``requests[cpu]``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Path:
    text: str = ""

    def child(self, name: str, *more: str) -> "Path":
        out = Path(f"{self.text}.{name}" if self.text else name)
        for extra in more:
            out = out.child(extra)
        return out

    def index(self, i: int) -> "Path":
        return Path(f"{self.text}[{i}]")

    def key(self, k: str) -> "Path":
        return Path(f"{self.text}[{k}]")

    def __str__(self) -> str:
        return self.text


ROOT = Path()
