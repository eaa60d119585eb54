"""Cluster DNS: Services and Endpoints answered as DNS names, the way Kubernetes' DNS
specification (and CoreDNS's kubernetes plugin) names them."""
