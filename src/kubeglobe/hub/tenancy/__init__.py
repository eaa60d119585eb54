"""Tenancy on the hub: projects, their namespaces on clusters, platform roles as RBAC."""
