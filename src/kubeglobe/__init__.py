"""KubeGlobe: a multi-cluster Kubernetes platform with a global hub cluster."""

__version__ = "0.1.0"
