"""The platform API server: token auth, REST views of the CRs, the cluster proxy."""
