"""Validate the fake's JSON bodies against Alpaca's OpenAPI specification.

The specification (``trading-openapi.yaml`` next to this file: Alpaca's own,
alpacahq/alpaca-docs ``oas/trading/openapi.yaml`` at 2080c5e, unchanged) is
relaxed in EXACTLY the places where it rejects what Alpaca really sends and
alpaca-py accepts (see /work/shared/alpaca/README.md); each relaxation is a
named function so a test can show, one by one, that it is still needed:

- ``order_trailing_nullable``: Order ``trail_percent``/``trail_price``/``hwm``
  are sent as ``null`` but typed non-nullable;
- ``fill_activity_any_of``: a FILL activity matches both branches of the
  ``oneOf`` on ``/v2/account/activities/{activity_type}`` (neither branch has
  required properties), so ``oneOf`` becomes ``anyOf``;
- ``close_all_status_number``: the close-all ``status`` is sent as a number but
  typed as a string.

Paths alpaca-py uses that the specification lacks are checked against the
nearest component (``EXTRA_PATHS``). Error bodies (no schema in the
specification) are checked against Alpaca's ``{"code", "message"}`` shape.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml
from jsonschema.exceptions import best_match
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SPEC_FILE = Path(__file__).with_name("trading-openapi.yaml")
#: The Market Data API's specification (same source and commit), for ``/v2/stocks/...``.
DATA_SPEC_FILE = Path(__file__).with_name("data-openapi.yaml")
BASE = "urn:alpaca-trading-openapi"

#: Paths alpaca-py calls that are not in the specification → the schema used instead.
EXTRA_PATHS: dict[tuple[str, str], str] = {
    ("get", "/v2/orders:by_client_order_id"): "#/components/schemas/Order",
    ("get", "/v2/assets/{symbol_or_asset_id}"): "#/components/schemas/Assets",
}

#: Alpaca's error body (not in the specification).
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
}

ACTIVITIES_ITEMS = ("paths", "/v2/account/activities/{activity_type}", "get", "responses", "200")


@functools.cache
def load_spec(path: Path = SPEC_FILE) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        spec: dict[str, Any] = yaml.safe_load(fh)
    return spec


def _dig(spec: dict[str, Any], *keys: str) -> Any:
    node: Any = spec
    for key in keys:
        node = node[key]
    return node


def order_trailing_nullable(spec: dict[str, Any]) -> None:
    props = _dig(spec, "components", "schemas", "Order", "properties")
    for name in ("trail_percent", "trail_price", "hwm"):
        assert props[name].get("nullable") is not True, f"spec now allows null {name}"
        props[name]["nullable"] = True


def fill_activity_any_of(spec: dict[str, Any]) -> None:
    items = _dig(spec, *ACTIVITIES_ITEMS, "content", "application/json", "schema", "items")
    assert "oneOf" in items, "spec no longer uses oneOf for activities"
    items["anyOf"] = items.pop("oneOf")


def close_all_status_number(spec: dict[str, Any]) -> None:
    status = _dig(spec, "components", "schemas", "PositionClosedReponse", "properties", "status")
    assert status.get("type") == "string", "spec no longer types close-all status as string"
    status.pop("type")
    status["anyOf"] = [{"type": "string"}, {"type": "integer"}]


RELAXATIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "order_trailing_nullable": order_trailing_nullable,
    "fill_activity_any_of": fill_activity_any_of,
    "close_all_status_number": close_all_status_number,
}


def relaxed_spec(names: Iterable[str] | None = None) -> dict[str, Any]:
    """The specification with the named relaxations (all by default) applied."""
    spec = copy.deepcopy(load_spec())
    for name in RELAXATIONS if names is None else names:
        RELAXATIONS[name](spec)
    return spec


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


class ResponseValidator:
    """Checks bodies of (method, path template, status) against the (relaxed) specification."""

    def __init__(self, relaxations: Iterable[str] | None = None, *, data: bool = False) -> None:
        self.spec = copy.deepcopy(load_spec(DATA_SPEC_FILE)) if data else relaxed_spec(relaxations)
        self._data = None if data else ResponseValidator(data=True)
        resource = Resource.from_contents(self.spec, default_specification=DRAFT4)
        self._registry: Registry[Any] = Registry().with_resource(BASE, resource)

    def schema_ref(self, method: str, template: str, status: int) -> dict[str, Any] | None:
        """A ``$ref`` to the response schema; ERROR_SCHEMA for an error; None: no body."""
        method = method.lower()
        if (method, template) in EXTRA_PATHS:
            if status >= 400:
                return ERROR_SCHEMA
            return {"$ref": BASE + EXTRA_PATHS[(method, template)]}
        responses = self.spec["paths"].get(template, {}).get(method, {}).get("responses")
        if responses is None:
            raise KeyError(f"{method.upper()} {template} is not in the specification")
        response = responses.get(str(status))
        has_json = response is not None and "application/json" in response.get("content", {})
        if status >= 400 and not has_json:
            return ERROR_SCHEMA  # the specification describes no error bodies
        if response is None:
            raise KeyError(f"{method.upper()} {template}: no {status} response in the spec")
        if not has_json:
            return None
        path = _pointer("paths", template, method, "responses", str(status))
        return {"$ref": f"{BASE}#/{path}/content/application~1json/schema"}

    def errors(self, method: str, template: str, status: int, body: Any) -> list[str]:
        if self._data is not None and template.startswith("/v2/stocks/"):
            return self._data.errors(method, template, status, body)  # Market Data API
        schema = self.schema_ref(method, template, status)
        if schema is None:
            return [] if body is None else [f"{status} must have no body"]
        validator = OAS30Validator(
            schema, registry=self._registry, format_checker=oas30_format_checker
        )
        found = list(validator.iter_errors(body))
        if not found:
            return []
        best = best_match(found)
        where = "/".join(str(p) for p in best.absolute_path)
        return [f"{method.upper()} {template} {status} at /{where}: {best.message}"] + [
            e.message for e in found if e is not best
        ]

    def check_all(self, responses: Iterable[Any]) -> list[str]:
        """Problems of recorded responses (``.method/.template/.status/.body``)."""
        out: list[str] = []
        for r in responses:
            out.extend(self.errors(r.method, r.template, r.status, r.body)[:1])
        return out


@functools.cache
def default_validator() -> ResponseValidator:
    return ResponseValidator()
