"""The `kubeglobe` command line, one module per noun."""
