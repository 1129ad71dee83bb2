"""The OpenAPI schema at /api/schema/ matches what the endpoints take and return."""

import pytest

from invocations.filters import InvocationFilter

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(api):
    response = api.get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def resolve(schema, node):
    """Follow a $ref, or an allOf with one $ref, to its component."""
    if "allOf" in node:
        node = node["allOf"][0]
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return schema["components"]["schemas"][name]
    return node


def json_schema(schema, response):
    return resolve(schema, response["content"]["application/json"]["schema"])


@pytest.mark.parametrize("name", ["retry", "stop"])
def test_invocation_action_has_no_body(schema, name):
    operation = schema["paths"][f"/api/invocations/{{request_id}}/{name}/"]["post"]
    assert "requestBody" not in operation
    assert set(operation["responses"]) == {"202", "403", "404", "409"}
    accepted = json_schema(schema, operation["responses"]["202"])
    assert set(accepted["properties"]) == {"request_id", "action", "status"}
    error = json_schema(schema, operation["responses"]["409"])
    assert set(error["properties"]) == {"detail"}


def test_acknowledge_and_cancel_have_no_body(schema):
    acknowledge = schema["paths"]["/api/alerts/{id}/acknowledge/"]["post"]
    cancel = schema["paths"]["/api/bulk-actions/{id}/cancel/"]["post"]
    assert "requestBody" not in acknowledge
    assert "requestBody" not in cancel
    assert "409" in cancel["responses"]


def test_invoke_documents_headers(schema):
    operation = schema["paths"]["/api/functions/{name}/invocations"]["post"]
    headers = {
        parameter["name"]: parameter
        for parameter in operation["parameters"]
        if parameter["in"] == "header"
    }
    invocation_type = headers["X-Fc-Invocation-Type"]["schema"]
    assert sorted(invocation_type["enum"]) == ["Async", "Sync"]
    assert invocation_type["default"] == "Sync"
    assert "pattern" in headers["X-Fc-Async-Task-Id"]["schema"]


def test_invoke_documents_raw_body(schema):
    operation = schema["paths"]["/api/functions/{name}/invocations"]["post"]
    body = operation["requestBody"]["content"]
    assert list(body) == ["*/*"]
    assert body["*/*"]["schema"]["format"] == "binary"


def test_invoke_documents_responses(schema):
    operation = schema["paths"]["/api/functions/{name}/invocations"]["post"]
    responses = operation["responses"]
    for code in ["200", "202", "400", "403", "404", "409", "411", "413"]:
        assert code in responses
    assert responses["200"]["content"]["*/*"]["schema"]["format"] == "binary"
    accepted = json_schema(schema, responses["202"])
    assert set(accepted["properties"]) == {"request_id", "status"}
    assert "X-Fc-Request-Id" in responses["202"]["headers"]
    assert "X-Fc-Error-Type" in responses["200"]["headers"]


def test_bulk_create_documents_body(schema):
    operation = schema["paths"]["/api/invocations/bulk"]["post"]
    content = operation["requestBody"]["content"]
    assert list(content) == ["application/json"]
    body = resolve(schema, content["application/json"]["schema"])
    assert set(body["properties"]) == {"action", "request_ids", "filters"}
    assert body["required"] == ["action"]
    assert "202" in operation["responses"]


def test_bulk_filters_match_invocation_filter(schema):
    body = resolve(schema, schema["components"]["schemas"]["BulkActionRequest"])
    filters = resolve(schema, body["properties"]["filters"])
    assert set(filters["properties"]) == set(InvocationFilter.base_filters)
