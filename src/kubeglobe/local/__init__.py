"""The local environment: real etcd, apiservers and nodes on one machine (`kubeglobe local`)."""
