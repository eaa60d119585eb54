"""The workload-cluster side: the agent that dials the hub and serves its tunnel."""
