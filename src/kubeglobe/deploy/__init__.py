"""The platform's own workloads in global, rendered from typed values (pure), applied by
`kubeglobe local up` and `kubeglobe install`."""
