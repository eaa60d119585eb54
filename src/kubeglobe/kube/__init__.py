"""The one place that talks to Kubernetes: clients per cluster, apply, resources."""
