"""The OpenAPI 3.1 document, made from the endpoints' declarations
(``ezpyr.api.framework.ENDPOINTS``) and their pydantic schemas: what is
served and what is documented cannot drift apart."""
from __future__ import annotations

import re

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from ezpyr import __version__
from ezpyr.api.framework import ENDPOINTS
from ezpyr.api.schemas import ErrorOut

ERRORS = {
    "401": "no token, or a token that is unknown, revoked, expired or whose owner is suspended",
    "403": "the token's owner may not do this, or the token is read-only",
    "404": "no object with that id",
    "409": "this node takes no changes (a slave): the body names the master",
    "412": "If-Match does not match the object's current ETag",
    "422": "the input is not valid; fields names each field's problem",
    "429": "too many requests for this token; Retry-After says when to try again",
}


def _models() -> list[type[BaseModel]]:
    seen = {ErrorOut}
    for spec in ENDPOINTS:
        for model in (spec.body, spec.response):
            if isinstance(model, type) and issubclass(model, BaseModel):
                seen.add(model)
    return sorted(seen, key=lambda m: m.__name__)


def _ref(model) -> dict:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def document(request=None) -> dict:
    models = _models()
    _, schemas = models_json_schema([(m, "validation") for m in models],
                                    ref_template="#/components/schemas/{model}")
    paths: dict = {}
    for spec in ENDPOINTS:
        path = spec.pattern
        operation = {"operationId": spec.route.replace("api.", "") + "_" + spec.method.lower(),
                     "summary": spec.summary, "tags": [spec.tag] if spec.tag else [],
                     "security": [{"bearer": []}], "parameters": [], "responses": {}}
        for name in re.findall(r"\{(\w+)\}", path):
            operation["parameters"].append({"name": name, "in": "path", "required": True,
                                            "schema": {"type": "string"}})
        for name, (schema, description) in spec.query.items():
            operation["parameters"].append({"name": name, "in": "query", "required": False,
                                            "schema": schema, "description": description})
        if spec.method in ("PATCH", "DELETE"):
            operation["parameters"].append({"name": "If-Match", "in": "header", "required": False,
                                            "schema": {"type": "string"},
                                            "description": "the ETag you read; refused with 412 if it changed"})
        if isinstance(spec.body, str):  # a media type: the raw body (a CSV file)
            operation["requestBody"] = {"required": True,
                                        "content": {spec.body: {"schema": {"type": "string"}}}}
        elif spec.body is not None:
            operation["requestBody"] = {"required": True,
                                        "content": {"application/json": {"schema": _ref(spec.body)}}}
        ok = {"description": "done"}
        if isinstance(spec.response, str):
            ok["content"] = {spec.response: {"schema": {"type": "string"}}}
        elif spec.response is not None:
            ok["content"] = {"application/json": {"schema": _ref(spec.response)}}
        if spec.headers:
            ok["headers"] = {name: {"description": text, "schema": {"type": "string"}}
                             for name, text in spec.headers.items()}
        operation["responses"][str(spec.status)] = ok
        codes = ["401", "403", "429"]
        if "{" in path:
            codes.append("404")
        if spec.write:
            codes += ["422"] if spec.node_local else ["409", "422"]
        if spec.method in ("PATCH", "DELETE"):
            codes.append("412")
        if spec.query or spec.body is not None:
            codes.append("422")
        for code in sorted(set(codes)):
            operation["responses"][code] = {"description": ERRORS[code],
                                            "content": {"application/json": {"schema": _ref(ErrorOut)}}}
        if not operation["parameters"]:
            del operation["parameters"]
        paths.setdefault(path, {})[spec.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "ezpyr API", "version": __version__,
                 "description": "The admin panel's actions over HTTP. Every call needs "
                                "`Authorization: Bearer <token>` (tokens are made on the panel's API tokens "
                                "page or with `ezpyr-admin CONFIG tokens add`)."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": schemas.get("$defs", {}),
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
