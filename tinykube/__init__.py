"""tinykube: Kubernetes, implemented in Python, one package per box of the architecture."""

__version__ = "0.1.0"

# The Kubernetes API version tinykube serves (see /version).
KUBERNETES_VERSION = "v1.32.0"
