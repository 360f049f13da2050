"""Real servers for tests, benchmarks and the demo: etcd, kube-apiserver, Gloo, Envoy, the petstore.

Nothing here is a fake: each module starts the real binary on loopback and stops it again.
"""
