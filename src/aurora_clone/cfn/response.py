"""The answer to CloudFormation: a JSON body PUT to the request's pre-signed ResponseURL.

Unlike crhelper's sender this one checks the HTTP status (a non-2xx answer means CloudFormation never
got it), has a socket timeout, gives up after a bounded number of tries, keeps the body within
CloudFormation's 4096 bytes, and never logs the URL (it is a credential until it expires).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools import Logger

from aurora_clone.logs import SERVICE
from aurora_clone.naming import not_created_id
from aurora_clone.outcome import Done, Failed

logger = Logger(service=SERVICE, child=True)

MAX_BODY_BYTES = 4096  # CloudFormation's limit for a custom resource response.
MAX_PHYSICAL_ID = 1024
_TRUNCATED = " [...]"


class ResponseNotDeliveredError(Exception):
    """CloudFormation did not accept the answer after every try."""


def response_body(event: Mapping[str, Any], outcome: Done | Failed) -> dict[str, Any]:
    """The answer to the CloudFormation request ``event``: SUCCESS with Data, or FAILED with a Reason.

    The PhysicalResourceId is never empty and never names something the resource did not create: the
    outcome's, else the request's own, else an id that cannot be an RDS identifier.
    """
    fallback = str(event.get("PhysicalResourceId") or "") or not_created_id(
        str(event.get("StackId", "")), str(event.get("RequestId", "")), str(event.get("LogicalResourceId", ""))
    )
    body: dict[str, Any] = {
        "Status": "SUCCESS" if isinstance(outcome, Done) else "FAILED",
        "PhysicalResourceId": outcome.physical_id or fallback,
        "StackId": event.get("StackId", ""),
        "RequestId": event.get("RequestId", ""),
        "LogicalResourceId": event.get("LogicalResourceId", ""),
        "NoEcho": False,
        "Data": dict(outcome.data) if isinstance(outcome, Done) else {},
    }
    if isinstance(outcome, Failed):
        body["Reason"] = outcome.reason or "Custom::AuroraClone failed."
    return body


def fit_body(body: dict[str, Any]) -> bytes:
    """Serialize ``body``, shortening Reason (then dropping Data) until it fits in 4096 bytes.

    Reason is cut by characters but measured in encoded bytes (JSON escapes make one character up
    to six), so the longest start of the Reason that fits is searched for.
    """
    body = dict(body)
    body["PhysicalResourceId"] = str(body.get("PhysicalResourceId", ""))[:MAX_PHYSICAL_ID]

    def encode(reason: str | None = None) -> bytes:
        if reason is not None:
            body["Reason"] = reason
        return json.dumps(body).encode()

    encoded = encode()
    if len(encoded) > MAX_BODY_BYTES and body.get("Reason"):
        reason = str(body["Reason"])
        shortest, longest = 0, len(reason)
        while shortest < longest:
            middle = (shortest + longest + 1) // 2
            if len(encode(reason[:middle] + _TRUNCATED)) <= MAX_BODY_BYTES:
                shortest = middle
            else:
                longest = middle - 1
        encoded = encode(reason[:shortest] + _TRUNCATED)
    if len(encoded) > MAX_BODY_BYTES:
        body["Data"] = {}
        encoded = encode()
    return encoded


def put_response(
    url: str,
    body: dict[str, Any],
    *,
    attempts: int = 5,
    timeout: float = 10.0,
    backoff: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """PUT ``body`` to ``url``; raise ResponseNotDeliveredError when no try got a 2xx answer."""
    payload = fit_body(body)
    problem = ""
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(url, data=payload, method="PUT", headers={"Content-Type": ""})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                status = answer.status
        except urllib.error.HTTPError as error:
            status = error.code
        except (urllib.error.URLError, OSError) as error:
            status, problem = 0, f"{type(error).__name__}: {getattr(error, 'reason', error)}"
        if 200 <= status < 300:
            logger.info("Answer delivered", extra={"status": body.get("Status"), "http_status": status})
            return
        if status:
            problem = f"HTTP {status}"
            if 400 <= status < 500 and status not in (408, 429):
                break  # the URL is expired or wrong: trying again cannot help
        logger.warning("Answer not delivered", extra={"attempt": attempt, "problem": problem})
        if attempt < attempts:
            sleep(backoff * 2 ** (attempt - 1))
    raise ResponseNotDeliveredError(f"CloudFormation did not accept the answer: {problem}")
