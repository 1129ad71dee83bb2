"""Cost estimates on the function list and the invocation page."""

import pytest
from django.urls import reverse

from invocations.models import Status
from tests.test_pages_billing import expected_cost
from tests.test_pages_factories import make_function, make_invocation, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer_client(client):
    client.force_login(make_user("viewer"))
    return client


@pytest.fixture
def billed_invocation():
    function = make_function("resize", memory_mb=1024)
    return make_invocation(
        function,
        Status.SUCCEEDED,
        request_id="billed-1",
        billed_attempts=2,
        unbilled_attempts=1,
        billed_duration_ms=1500,
    )


def test_function_list_hides_estimate(viewer_client, billed_invocation, settings):
    settings.FCDASH_PRICE_PER_GB_SECOND = None
    settings.FCDASH_PRICE_PER_MILLION_INVOCATIONS = None

    response = viewer_client.get(reverse("function-list"))

    assert response.context["prices_configured"] is False
    assert "Estimated cost" not in response.text
    assert "estimate" not in response.text.lower()


def test_function_list_shows_estimate(viewer_client, billed_invocation, settings):
    settings.FCDASH_PRICE_PER_GB_SECOND = "0.0000166667"
    settings.FCDASH_PRICE_PER_MILLION_INVOCATIONS = "0.2"

    response = viewer_client.get(reverse("function-list"))

    cost = expected_cost(1024 * 1500, 2)
    assert response.context["prices_configured"] is True
    assert "Estimated cost (estimate)" in response.text
    assert f'<td class="number">{cost}</td>' in response.text


def test_detail_hides_estimate(viewer_client, billed_invocation, settings):
    settings.FCDASH_PRICE_PER_GB_SECOND = None
    settings.FCDASH_PRICE_PER_MILLION_INVOCATIONS = None

    response = viewer_client.get(reverse("invocation-detail", args=["billed-1"]))

    assert response.context["estimated_cost"] is None
    assert "estimated cost" not in response.text


def test_detail_shows_estimate(viewer_client, billed_invocation, settings):
    settings.FCDASH_PRICE_PER_GB_SECOND = "0.0000166667"
    settings.FCDASH_PRICE_PER_MILLION_INVOCATIONS = "0.2"

    response = viewer_client.get(reverse("invocation-detail", args=["billed-1"]))

    cost = expected_cost(1024 * 1500, 2)
    assert f"estimated cost {cost}" in response.text
    assert "(estimate from the configured prices)" in response.text
