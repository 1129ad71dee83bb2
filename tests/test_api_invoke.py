"""The invoke endpoint: chunked bodies, the operator role, content types."""

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.db import connections
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from invocations import tasks
from invocations.models import Function, Invocation

from .conftest import make_user, token_client

CHUNKED_MESSAGE = "Send the payload with a Content-Length header."


class NoContentLengthClient(APIClient):
    """An API client whose requests reach Django without CONTENT_LENGTH.

    That is how a WSGI server passes on a chunked request body.
    """

    def request(self, **request):
        request.pop("CONTENT_LENGTH", None)
        return super().request(**request)


def chunked_invoke(client, name, invocation_type="Async"):
    return client.generic(
        "POST",
        f"/api/functions/{name}/invocations",
        b'{"id": 7}',
        content_type="application/json",
        HTTP_X_FC_INVOCATION_TYPE=invocation_type,
        HTTP_TRANSFER_ENCODING="chunked",
    )


def no_length_client(user) -> APIClient:
    client = NoContentLengthClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("invocation_type", ["Async", "Sync"])
def test_chunked_invoke_is_411(admin_user, make_function, invocation_type):
    make_function("resize")
    response = chunked_invoke(no_length_client(admin_user), "resize", invocation_type)
    assert response.status_code == 411
    assert CHUNKED_MESSAGE in response.json()["detail"]
    assert not Invocation.objects.exists()


@pytest.mark.django_db
def test_chunked_with_content_length_is_411(api, make_function):
    make_function("resize")
    response = chunked_invoke(api, "resize")
    assert response.status_code == 411
    assert not Invocation.objects.exists()


@pytest.mark.django_db
def test_chunked_function_patch_is_411(admin_user, make_function):
    make_function("resize")
    response = no_length_client(admin_user).generic(
        "PATCH",
        "/api/functions/resize/",
        b'{"timeout_s": 5}',
        content_type="application/json",
        HTTP_TRANSFER_ENCODING="chunked",
    )
    assert response.status_code == 411
    assert Function.objects.get().timeout_s != 5


@pytest.mark.django_db
def test_chunked_bulk_create_is_411(operator):
    response = no_length_client(operator).generic(
        "POST",
        "/api/invocations/bulk",
        b'{"action": "stop", "filters": {"status": "Retrying"}}',
        content_type="application/json",
        HTTP_TRANSFER_ENCODING="chunked",
    )
    assert response.status_code == 411


class QuietWSGIRequestHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


def close_connections_after(handler):
    """Wrap a WSGI app so that the serving thread closes its database connections."""

    def app(environ, start_response):
        response = handler(environ, start_response)
        try:
            body = b"".join(response)
        finally:
            response.close()
            connections.close_all()
        return [body]

    return app


@pytest.fixture
def wsgi_server(transactional_db):
    """fcdash under wsgiref on 127.0.0.1, so requests pass through a real socket."""
    server = make_server(
        "127.0.0.1",
        0,
        close_connections_after(WSGIHandler()),
        server_class=WSGIServer,
        handler_class=QuietWSGIRequestHandler,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join()


def post_over_socket(port, token, headers, body):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest("POST", "/api/functions/resize/invocations")
        connection.putheader("Authorization", f"Token {token}")
        connection.putheader("X-Fc-Invocation-Type", "Async")
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_chunked_invoke_over_socket_is_411(wsgi_server, demo_server):
    Function.objects.create(
        name="resize",
        region="cn-hangzhou",
        endpoint_url=f"{demo_server}/cn-hangzhou/ok",
    )
    token = Token.objects.create(user=make_user("ada", "admin")).key
    chunked_body = b'9\r\n{"id": 7}\r\n0\r\n\r\n'

    status, body = post_over_socket(
        wsgi_server, token, {"Transfer-Encoding": "chunked"}, chunked_body
    )
    assert status == 411
    assert CHUNKED_MESSAGE in json.loads(body)["detail"]
    assert not Invocation.objects.exists()

    status, _ = post_over_socket(
        wsgi_server, token, {"Content-Length": "9"}, b'{"id": 7}'
    )
    assert status == 202
    assert bytes(Invocation.objects.get().payload) == b'{"id": 7}'


@pytest.mark.django_db
@pytest.mark.parametrize("invocation_type", ["Async", "Sync"])
def test_viewer_cannot_invoke(viewer, make_function, invocation_type):
    make_function("resize")
    response = token_client(viewer).generic(
        "POST",
        "/api/functions/resize/invocations",
        b"{}",
        HTTP_X_FC_INVOCATION_TYPE=invocation_type,
    )
    assert response.status_code == 403
    assert response.json()["detail"] == "Invoking functions needs the operator role."
    assert not Invocation.objects.exists()


@pytest.mark.django_db
def test_operator_can_invoke(operator, make_function):
    make_function("resize")
    response = token_client(operator).generic(
        "POST",
        "/api/functions/resize/invocations",
        b"{}",
        HTTP_X_FC_INVOCATION_TYPE="Async",
    )
    assert response.status_code == 202
    assert Invocation.objects.count() == 1


class RecordingHandler(BaseHTTPRequestHandler):
    """Records each request's Content-Type and returns a fixed plain text body."""

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        self.server.content_types.append(self.headers.get("Content-Type"))
        body = b"resized"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


@pytest.fixture
def recording_server():
    """A function server on 127.0.0.1 that records the Content-Type it receives."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), RecordingHandler)
    server.content_types = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def recorded_function(server) -> Function:
    host, port = server.server_address[:2]
    return Function.objects.create(
        name="resize", region="cn-hangzhou", endpoint_url=f"http://{host}:{port}/fn"
    )


def invoke_json(client, invocation_type):
    return client.generic(
        "POST",
        "/api/functions/resize/invocations",
        b'{"id": 7}',
        content_type="application/json; charset=utf-8",
        HTTP_X_FC_INVOCATION_TYPE=invocation_type,
    )


@pytest.mark.django_db
def test_sync_response_has_function_content_type(api, make_function):
    make_function("resize", behaviour="ok")
    response = invoke_json(api, "Sync")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"


@pytest.mark.django_db
def test_sync_response_keeps_plain_text_type(api, recording_server):
    recorded_function(recording_server)
    response = invoke_json(api, "Sync")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content == b"resized"
    assert "sandbox" in response["Content-Security-Policy"]


@pytest.mark.django_db
def test_sync_sends_caller_content_type(api, recording_server):
    recorded_function(recording_server)
    invoke_json(api, "Sync")
    assert recording_server.content_types == ["application/json; charset=utf-8"]
    assert Invocation.objects.get().content_type == "application/json; charset=utf-8"


@pytest.mark.django_db
def test_async_sends_caller_content_type(api, recording_server):
    recorded_function(recording_server)
    response = invoke_json(api, "Async")
    assert response.status_code == 202
    invocation = Invocation.objects.get()
    assert invocation.content_type == "application/json; charset=utf-8"

    tasks.run_attempt(invocation.pk, 1)
    assert recording_server.content_types == ["application/json; charset=utf-8"]


@pytest.mark.django_db
def test_sync_without_content_type_sends_octet_stream(api, recording_server):
    recorded_function(recording_server)
    response = api.generic(
        "POST",
        "/api/functions/resize/invocations",
        b"raw",
        content_type="",
        HTTP_X_FC_INVOCATION_TYPE="Sync",
    )
    assert response.status_code == 200
    assert recording_server.content_types == ["application/octet-stream"]


def test_invoke_get_is_not_a_server_error(admin_user, make_function):
    from django.test import Client

    make_function("resize")
    client = Client()
    client.force_login(admin_user)
    for accept in ("text/html", "*/*"):
        response = client.get("/api/functions/resize/invocations", HTTP_ACCEPT=accept)
        # DRF rejects the method (405) or, first, the Accept header (406).
        assert response.status_code in (405, 406)
        assert response["Content-Type"] == "application/json"
