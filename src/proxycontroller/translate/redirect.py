"""HTTP to HTTPS redirects: the route that answers every request with a redirect to the same URL over https.

Envoy (route.RedirectAction with https_redirect) keeps the host and the path; it drops the port of the
request when it was the default port of http, so `Host: a` gives `Location: https://a/...`, and a port to
redirect to is set explicitly (`portRedirect`) when the HTTPS listener is not on 443.
"""

from __future__ import annotations

from typing import Any, Literal

from proxycontroller.config import shown
from proxycontroller.model.meta import ObjectMeta
from proxycontroller.model.proxy import Matcher, RedirectAction, Route

# Gloo's RedirectAction.RedirectResponseCode by the status it answers. MOVED_PERMANENTLY is the enum's zero:
# left unset, since Gloo writes a Proxy back without zero values and the spec would then differ from ours.
RESPONSE_CODES: dict[int, str | None] = {
    301: None,
    302: "FOUND",
    303: "SEE_OTHER",
    307: "TEMPORARY_REDIRECT",
    308: "PERMANENT_REDIRECT",
}
ResponseCode = Literal[301, 302, 303, 307, 308]

# Set to "false" by a service owner whose upstream must stay reachable over plain HTTP.
OPT_OUT_ANNOTATION = "proxycontroller.io/https-redirect"


class OptOutError(ValueError):
    """An opt-out annotation whose value is neither "true" nor "false"."""


def opted_out(metadata: ObjectMeta) -> bool:
    """Whether the upstream asks not to be redirected; OptOutError for a value that is not a boolean word."""
    value = (metadata.annotations or {}).get(OPT_OUT_ANNOTATION)
    if value is None or value == "true":
        return False
    if value == "false":
        return True
    raise OptOutError(f'annotation {OPT_OUT_ANNOTATION}={shown(value)}: must be "true" or "false"')


def https_redirect_route(response_code: ResponseCode = 301, port: int | None = None) -> Route:
    """A route redirecting every request to https, with this status, to `port` if given (else the default)."""
    # Only the fields set: a model dump leaves out what was never set, and None set explicitly would be written.
    fields: dict[str, Any] = {"https_redirect": True}
    if (code := RESPONSE_CODES[response_code]) is not None:
        fields["response_code"] = code
    if port is not None:
        fields["port_redirect"] = port
    return Route(matchers=(Matcher(prefix="/"),), redirect_action=RedirectAction(**fields))
