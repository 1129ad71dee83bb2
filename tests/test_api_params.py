"""Query parameters of the API lists: invalid values get 400 naming the parameter."""

import base64

import pytest
from django.utils import timezone

from invocations.models import AlertKind, Function, Invocation, QuotaAlert

from .conftest import token_client

pytestmark = pytest.mark.django_db


def make_invocations(count):
    function = Function.objects.create(
        name="resize", region="cn-hangzhou", endpoint_url="http://127.0.0.1:9/fn"
    )
    for _ in range(count):
        Invocation.objects.create(
            function=function,
            region=function.region,
            invocation_type="Async",
            memory_mb=function.memory_mb,
        )


def make_alerts(count):
    for number in range(count):
        QuotaAlert.objects.create(
            region=f"region-{number}", kind=AlertKind.THROTTLING, quota=100
        )


def encoded_cursor(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("query", "parameter", "value"),
    [
        ("error_type=Bogus", "error_type", "Bogus"),
        ("error_type=handledinvocationerror", "error_type", "handledinvocationerror"),
        ("region=CN!!", "region", "CN!!"),
        ("limit=abc", "limit", "abc"),
        ("limit=0", "limit", "0"),
        ("limit=-1", "limit", "-1"),
        ("limit=501", "limit", "501"),
        ("limit=2.5", "limit", "2.5"),
        ("cursor=garbage", "cursor", "garbage"),
        (f"cursor={encoded_cursor('p=not-a-time')}", "cursor", ""),
        (f"cursor={encoded_cursor('o=x')}", "cursor", ""),
    ],
)
def test_invocation_list_bad_parameter(api, query, parameter, value):
    make_invocations(3)
    response = api.get(f"/api/invocations/?{query}")
    assert response.status_code == 400
    messages = response.json()[parameter]
    assert value in messages[0]


def test_invocation_list_cursor_error_message(api):
    response = api.get("/api/invocations/?cursor=garbage")
    message = response.json()["cursor"][0]
    assert message.startswith("Invalid cursor 'garbage'")
    assert "first page" in message


def test_invocation_list_bad_limit_gives_range(api):
    response = api.get("/api/invocations/?limit=0")
    assert "from 1 to 500" in response.json()["limit"][0]


@pytest.mark.parametrize("error_type", ["HandledInvocationError", "WorkerLost"])
def test_invocation_list_known_error_type(api, error_type):
    response = api.get(f"/api/invocations/?error_type={error_type}")
    assert response.status_code == 200


@pytest.mark.parametrize("query", ["limit=1", "limit=500", "limit=", "cursor="])
def test_invocation_list_valid_paging(api, query):
    make_invocations(2)
    response = api.get(f"/api/invocations/?{query}")
    assert response.status_code == 200


def test_invocation_list_limit_sets_page_size(api):
    make_invocations(3)
    response = api.get("/api/invocations/?limit=2")
    assert len(response.json()["results"]) == 2


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("limit=abc", "limit"),
        ("limit=0", "limit"),
        ("limit=-1", "limit"),
        ("cursor=garbage", "cursor"),
        ("region=CN!!", "region"),
        ("kind=flood", "kind"),
    ],
)
def test_alert_list_bad_parameter(viewer, query, parameter):
    make_alerts(2)
    response = token_client(viewer).get(f"/api/alerts/?{query}")
    assert response.status_code == 400
    assert parameter in response.json()


def test_alert_list_cursor_pages(viewer):
    make_alerts(3)
    client = token_client(viewer)
    first = client.get("/api/alerts/?limit=2").json()
    second = client.get(first["next"]).json()
    regions = [row["region"] for row in first["results"] + second["results"]]
    assert sorted(regions) == ["region-0", "region-1", "region-2"]


def test_alert_list_region_filter(viewer):
    make_alerts(2)
    response = token_client(viewer).get("/api/alerts/?region=region-1")
    assert response.status_code == 200
    assert [row["region"] for row in response.json()["results"]] == ["region-1"]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [("error_type=Bogus", "error_type"), ("region=CN!!", "region")],
)
def test_export_bad_filter(api, query, parameter):
    response = api.get(f"/api/invocations/export.csv?{query}")
    assert response.status_code == 400
    assert parameter in response.json()


def test_bulk_filters_reject_unknown_error_type(operator):
    body = {"action": "stop", "filters": {"error_type": "Bogus"}}
    response = token_client(operator).post("/api/invocations/bulk", body, format="json")
    assert response.status_code == 400
    assert "error_type" in response.json()["filters"]


def test_alert_list_cursor_with_bad_time(viewer):
    make_alerts(1)
    QuotaAlert.objects.update(opened_at=timezone.now())
    cursor = encoded_cursor("p=yesterday")
    response = token_client(viewer).get(f"/api/alerts/?cursor={cursor}")
    assert response.status_code == 400
    assert "cursor" in response.json()


def test_since_after_until_is_400(api):
    response = api.get(
        "/api/invocations/?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z"
    )
    assert response.status_code == 400
    assert "until" in response.json()
