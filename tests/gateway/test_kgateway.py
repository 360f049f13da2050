"""The Gateway API rig works: a hand-written HTTPRoute to a Service whose endpoint is the petstore in the test
host is accepted by kgateway, and kgateway's Envoy routes the seed's curl (by Host header) to it."""

from __future__ import annotations

import http.client
from typing import Any

from proxycontroller.testing.servers.kgateway import CONTROLLER_NAME, GATEWAY_API_GROUP
from proxycontroller.testing.servers.petstore import PETS_BODY, PETS_PATH
from proxycontroller.testing.servers.services import service_objects
from proxycontroller.testing.servers.traffic import get, wait_for_status
from tests.gateway.conftest import GatewayRig, poll

HOST = "default-petstore-8080"


def petstore_service(rig: GatewayRig) -> list[dict[str, Any]]:
    """Service default/petstore port 8080, its endpoint the petstore in the test host (EndpointSlice by hand)."""
    return service_objects(
        name="petstore", namespace="default", port=8080, address=rig.host.address, target_port=rig.petstore_port
    )


def petstore_route(rig: GatewayRig) -> dict[str, Any]:
    return {
        "apiVersion": f"{GATEWAY_API_GROUP}/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "petstore", "namespace": "default"},
        "spec": {
            "parentRefs": [{"name": rig.gateway_name, "namespace": rig.gateway_namespace, "sectionName": "http"}],
            "hostnames": [HOST],
            "rules": [{"backendRefs": [{"name": "petstore", "port": 8080}]}],
        },
    }


def route_accepted(route: dict[str, Any], rig: GatewayRig) -> str:
    """The Accepted condition kgateway reported for our Gateway in the route's status.parents ("" if none yet)."""
    for parent in (route.get("status") or {}).get("parents") or []:
        ref = parent.get("parentRef") or {}
        if parent.get("controllerName") == CONTROLLER_NAME and ref.get("name") == rig.gateway_name:
            for cond in parent.get("conditions") or []:
                if cond.get("type") == "Accepted":
                    return str(cond.get("status"))
    return ""


def test_httproute_to_a_service_is_accepted_and_routes_traffic_through_kgateways_envoy(gateway_rig: GatewayRig) -> None:
    rig = gateway_rig
    url = rig.envoy.url(rig.gateway_port, PETS_PATH)
    # Before the route, the Gateway's listener knows no such host: Envoy answers 404 (or is not listening yet).
    assert get(url, HOST)[0] in (0, 404)

    for obj in [*petstore_service(rig), petstore_route(rig)]:
        rig.apply(obj)

    body = wait_for_status(url, HOST, 200, timeout=60)
    assert body == PETS_BODY
    # Routing is by Host header: another host is not routed to the petstore.
    assert get(url, "default-other-8080")[0] == 404

    def route() -> dict[str, Any]:
        return rig.read("HTTPRoute", "httproutes", "petstore", "default")

    poll(lambda: route_accepted(route(), rig) == "True", 60, "the route's Accepted condition", lambda: f": {route()}")


def raw_get(rig: GatewayRig, host: str, path: str) -> tuple[int, dict[str, str], bytes]:
    """One GET without following redirects (a redirect to https://<host> must not leave this machine)."""
    connection = http.client.HTTPConnection(rig.host.address, rig.gateway_port, timeout=5)
    try:
        connection.request("GET", path, headers={"Host": host})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_prefix_rewrite_and_https_redirect_filters_work_with_this_envoy(gateway_rig: GatewayRig) -> None:
    """What the controller's HTTPRoutes will use, hand-written: URLRewrite ReplacePrefixMatch (the petstore must
    see /api/pets) and RequestRedirect to https with 301, both accepted by kgateway and served by Envoy 1.38."""
    rig = gateway_rig
    for obj in petstore_service(rig):
        rig.apply(obj)
    redirect = {"scheme": "https", "statusCode": 301}
    parent = {"name": rig.gateway_name, "namespace": rig.gateway_namespace, "sectionName": "http"}
    rig.apply(
        {
            "apiVersion": f"{GATEWAY_API_GROUP}/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "petstore-prefix", "namespace": "default"},
            "spec": {
                "parentRefs": [parent],
                "hostnames": ["prefix.example"],
                "rules": [
                    {
                        "matches": [{"path": {"type": "PathPrefix", "value": "/default-petstore-8080"}}],
                        "filters": [
                            {
                                "type": "URLRewrite",
                                "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}},
                            }
                        ],
                        "backendRefs": [{"name": "petstore", "port": 8080}],
                    }
                ],
            },
        }
    )
    rig.apply(
        {
            "apiVersion": f"{GATEWAY_API_GROUP}/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "petstore-redirect", "namespace": "default"},
            "spec": {
                "parentRefs": [parent],
                "hostnames": ["redirect.example"],
                "rules": [{"filters": [{"type": "RequestRedirect", "requestRedirect": redirect}]}],
            },
        }
    )
    url = rig.envoy.url(rig.gateway_port, "/default-petstore-8080/api/pets")
    body = wait_for_status(url, "prefix.example", 200, 60)
    assert body == PETS_BODY  # the petstore answers the pets only on exactly /api/pets
    # The prefix is matched by path segment and removed once.
    assert raw_get(rig, "prefix.example", "/default-petstore-8080x/api/pets")[0] == 404

    def redirected() -> bool:
        return raw_get(rig, "redirect.example", "/api/pets")[0] == 301

    poll(redirected, 60, "the redirect route")
    status, headers, _ = raw_get(rig, "redirect.example", "/api/pets?x=1")
    assert (status, headers.get("location")) == (301, "https://redirect.example/api/pets?x=1")
    for name in ("petstore-prefix", "petstore-redirect"):

        def accepted(name: str = name) -> bool:
            return route_accepted(rig.read("HTTPRoute", "httproutes", name, "default"), rig) == "True"

        poll(accepted, 60, f"{name} Accepted")
