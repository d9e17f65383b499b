"""The controller manager: one module per controller, named as upstream's --controllers.

``ControllerManager`` (manager.py) runs the controllers listed in ``CONTROLLERS``
(registry.py) on one shared informer factory under leader election.
"""

from tinykube.controllers.config import ControllerManagerConfig
from tinykube.controllers.manager import ControllerManager
from tinykube.controllers.registry import CONTROLLERS

__all__ = ["CONTROLLERS", "ControllerManager", "ControllerManagerConfig"]
