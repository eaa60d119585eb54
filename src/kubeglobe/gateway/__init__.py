"""The platform gateway's data plane: HAProxy answering cluster-proxy requests itself."""
