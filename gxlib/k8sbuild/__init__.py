"""The Kubernetes tools (kustomize, etcd, kube-apiserver, kube-controller-manager, kwok) built from the Go
module proxy and cached, and a throwaway control plane on loopback made of them."""
