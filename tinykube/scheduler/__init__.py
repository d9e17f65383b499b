"""kube-scheduler: scheduling queue, framework with one Protocol per extension point, and
in-tree plugins (``plugins/``) named as upstream names them."""

from tinykube.scheduler.scheduler import Scheduler, SchedulerConfig

__all__ = ["Scheduler", "SchedulerConfig"]
