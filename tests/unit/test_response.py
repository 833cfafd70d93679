"""The answer to CloudFormation: a body within 4096 bytes, PUT until a 2xx, a bounded number of times."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from aurora_clone.cfn.response import ResponseNotDeliveredError, fit_body, put_response

SIGNATURE = "X-Amz-Signature=0123456789abcdef"
PATH = f"/cloudformation-custom-resource-response-useast1/arn%3Aaws%3Acloudformation?{SIGNATURE}"
STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/integration-env/0a1b2c3d-0000-1111-2222-333344445555"


def answer(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Status": "SUCCESS",
        "Reason": "",
        "PhysicalResourceId": "integration-env-clone-0123abcd",
        "StackId": STACK_ID,
        "RequestId": "5f0d9a8e-1b2c-4d3e-8f90-a1b2c3d4e5f6",
        "LogicalResourceId": "Clone",
        "NoEcho": False,
        "Data": {"Endpoint": "integration-env-clone-0123abcd.cluster-abc.us-east-1.rds.amazonaws.com"},
    }
    body.update(changes)
    return body


# --- fit_body ------------------------------------------------------------------------------------------------------


def test_fit_small_body_unchanged() -> None:
    body = answer()

    assert json.loads(fit_body(body)) == body


@pytest.mark.parametrize(
    "reason",
    [
        pytest.param("Clone failed: " + "x" * 10_000, id="ascii-10000"),
        pytest.param('DB cluster "prod-db" failed. ' * 400, id="some-quotes"),
        pytest.param("Clone failed: " + "\u00e9" * 10_000, id="non-ascii-10000"),
        pytest.param("Clone failed: " + '"\n' * 5_000, id="quotes-and-newlines"),
    ],
)
def test_fit_long_reason_shortened_start_kept(reason: str) -> None:
    body = answer(Status="FAILED", Reason=reason)

    encoded = fit_body(body)

    assert len(encoded) <= 4096
    fitted = json.loads(encoded)
    assert fitted["Reason"].startswith(reason[:500])
    assert len(fitted["Reason"]) < len(reason)
    assert {key: value for key, value in fitted.items() if key != "Reason"} == {
        key: value for key, value in body.items() if key != "Reason"
    }


def test_fit_long_physical_id_capped() -> None:
    physical_id = "p" * 5000

    fitted = json.loads(fit_body(answer(PhysicalResourceId=physical_id)))

    assert fitted["PhysicalResourceId"] == physical_id[:1024]


def test_fit_large_data_fits() -> None:
    body = answer(Data={f"Attribute{n}": "v" * 200 for n in range(30)})

    encoded = fit_body(body)

    assert len(encoded) <= 4096
    fitted = json.loads(encoded)
    assert fitted["Status"] == "SUCCESS"
    assert fitted["PhysicalResourceId"] == body["PhysicalResourceId"]


def test_fit_input_not_modified() -> None:
    body = answer(Reason="r" * 10_000, PhysicalResourceId="p" * 2000)
    before = json.dumps(body)

    fit_body(body)

    assert json.dumps(body) == before


# --- put_response --------------------------------------------------------------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Bucket:
    """The pre-signed URL's side: records every request and answers with the scripted statuses, then 200."""

    url: str
    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[Bucket]:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    state = Bucket(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.received.append(Received(self.command, self.path, dict(self.headers), body))
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}{PATH}"
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def sleeps() -> list[float]:
    return []


def test_accepted_answer_delivered_once(bucket: Bucket, sleeps: list[float]) -> None:
    put_response(bucket.url, answer(), sleep=sleeps.append)

    assert len(bucket.received) == 1
    assert sleeps == []


def test_request_put_with_empty_content_type_and_json(bucket: Bucket, sleeps: list[float]) -> None:
    body = answer()

    put_response(bucket.url, body, sleep=sleeps.append)

    (request,) = bucket.received
    assert request.method == "PUT"
    assert request.path == PATH  # the pre-signed query string is sent as it is
    content_types = [value for key, value in request.headers.items() if key.lower() == "content-type"]
    assert content_types == [""]
    assert json.loads(request.body) == body
    assert request.body == fit_body(body)


def test_request_long_reason_sent_within_limit(bucket: Bucket, sleeps: list[float]) -> None:
    put_response(bucket.url, answer(Status="FAILED", Reason="r" * 10_000), sleep=sleeps.append)

    (request,) = bucket.received
    assert len(request.body) <= 4096
    assert int(request.headers["Content-Length"]) == len(request.body)


@pytest.mark.parametrize("status", [500, 503, 429])
def test_refused_then_accepted_delivered_after_one_retry(bucket: Bucket, sleeps: list[float], status: int) -> None:
    bucket.statuses = [status]

    put_response(bucket.url, answer(), attempts=3, backoff=0.5, sleep=sleeps.append)

    assert len(bucket.received) == 2
    assert bucket.received[0].body == bucket.received[1].body
    assert sleeps == [0.5]


@pytest.mark.parametrize("status", [400, 403, 404])
def test_client_error_raises_after_one_try(bucket: Bucket, sleeps: list[float], status: int) -> None:
    """An expired or wrong pre-signed URL stays expired or wrong: trying again cannot succeed."""
    bucket.statuses = [status] * 5

    with pytest.raises(ResponseNotDeliveredError) as raised:
        put_response(bucket.url, answer(), attempts=5, sleep=sleeps.append)

    assert len(bucket.received) == 1
    assert sleeps == []
    assert str(status) in str(raised.value)
    assert SIGNATURE not in str(raised.value)  # the URL is a credential until it expires


@pytest.mark.parametrize("attempts", [1, 3, 5])
def test_server_error_always_raises_after_attempts(bucket: Bucket, sleeps: list[float], attempts: int) -> None:
    bucket.statuses = [500] * 10

    with pytest.raises(ResponseNotDeliveredError) as raised:
        put_response(bucket.url, answer(), attempts=attempts, backoff=0.25, sleep=sleeps.append)

    assert len(bucket.received) == attempts
    assert len(sleeps) == attempts - 1  # no pause after the last try
    assert all(pause >= 0.25 for pause in sleeps)
    assert sleeps == sorted(sleeps)
    assert "500" in str(raised.value)


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize("attempts", [1, 3])
def test_connection_refused_raises_after_attempts(
    monkeypatch: pytest.MonkeyPatch, sleeps: list[float], attempts: int
) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    tries: list[str] = []
    real_urlopen = urllib.request.urlopen

    def counting_urlopen(request: urllib.request.Request, *args: Any, **kwargs: Any) -> Any:
        tries.append(request.get_method())
        return real_urlopen(request, *args, **kwargs)

    # put_response looks urlopen up on urllib.request at each call.
    monkeypatch.setattr(urllib.request, "urlopen", counting_urlopen)
    url = f"http://127.0.0.1:{closed_port()}{PATH}"

    with pytest.raises(ResponseNotDeliveredError) as raised:
        put_response(url, answer(), attempts=attempts, timeout=2.0, sleep=sleeps.append)

    assert tries == ["PUT"] * attempts
    assert len(sleeps) == attempts - 1
    assert SIGNATURE not in str(raised.value)
