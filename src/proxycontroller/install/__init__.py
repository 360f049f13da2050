"""Installing on a cluster: the objects `proxycontroller manifests` prints and the address `proxycontroller url`
finds. Pure functions from the configuration (and, for `url`, the objects read from the cluster) to plain
Kubernetes objects as dicts: no I/O here."""
