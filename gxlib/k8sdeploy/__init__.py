"""``gx k8s deploy``: the devnet overlay running on the real single-node cluster (gxlib.k8scluster), with the
locally built images (gxlib.k8simages), static local volumes, the Secrets the manifests require and readiness."""
