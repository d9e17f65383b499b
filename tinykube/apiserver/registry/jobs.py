"""Jobs: the selector and pod labels are generated from the Job's uid on create, as
upstream's job strategy does unless ``spec.manualSelector`` is true."""

from __future__ import annotations

from tinykube.api import defaults
from tinykube.apiserver.registry.base import Strategy


class JobStrategy(Strategy):
    def prepare_for_create(self, obj: dict) -> None:
        super().prepare_for_create(obj)
        defaults.generate_job_selector(obj)
