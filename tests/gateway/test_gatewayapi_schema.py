"""The Gateway API schema shipped as package data is exactly what tools/gatewayapi/extract-schema.py makes of the
CRDs the test cluster installs (the Gateway API module build.sh kgateway names): a newer Gateway API release
changes the CRDs, and this test says to extract the schema again."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from proxycontroller.testing.servers.kgateway import KgatewayBinaries

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tools" / "gatewayapi" / "extract-schema.py"
SHIPPED = REPO / "src" / "proxycontroller" / "validate" / "gatewayapi_schema.json"


def test_the_shipped_schema_is_the_installed_crds(kgateway_binaries: KgatewayBinaries) -> None:
    spec = importlib.util.spec_from_file_location("extract_schema", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rendered: str = module.render(kgateway_binaries.gateway_api_crds)
    assert '"HTTPRoute"' in rendered
    assert '"ReferenceGrant"' in rendered
    assert SHIPPED.read_text() == rendered, f"run {SCRIPT} {kgateway_binaries.gateway_api_crds}"
