"""A real single-node Kubernetes cluster on this host (``gx k8s up|status|down``): containerd + runc + the bridge
CNI plugin, the control plane of gxlib.k8sbuild bound to a pre-created bridge, a kubelet, kube-proxy (iptables)
and CoreDNS. Every process, mount, network device, iptables chain and sysctl it adds is taken back by ``down``."""
