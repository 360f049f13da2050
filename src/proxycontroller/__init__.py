"""proxycontroller: routes every Gloo Upstream through a Proxy it writes."""
