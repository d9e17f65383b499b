"""The web UI: cluster overview, namespaces, workloads, services and events, live.

``Dashboard(DashboardConfig(kubeconfig=...))`` keeps informers (list + watch through the
API server, like every component), serves the pages' data as JSON under ``/api/``,
pushes each change to the browser over Server-Sent Events, and offers two actions:
scale a deployment, delete a pod.

Modules: ``views`` (pure: objects -> rows), ``state`` (informers -> page data),
``feed`` (changes -> per-browser queues, SSE encoding), ``actions`` (the writes),
``server`` (routes), ``page`` (the HTML/CSS/JS).
"""

from tinykube.dashboard.config import DashboardConfig
from tinykube.dashboard.server import Dashboard

__all__ = ["Dashboard", "DashboardConfig"]
