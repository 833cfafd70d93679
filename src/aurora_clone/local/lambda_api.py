"""Lambda's Invoke at the local world's endpoint, answered by the local Lambda runtime.

moto would run a function in a container; the functions the local CloudFormation deployed run in
``LocalLambda``'s warm workers instead, so ``lambda.invoke`` from the function itself (the connection
check), from boto3 or from the AWS CLI runs the real handler. ``LambdaInvokeApi(lambdas).in_front_of(app)``
answers ``POST /2015-03-31/functions/<name>/invocations`` for the functions ``LocalLambda`` knows, as Lambda
does (``RequestResponse``: 200 and the result, ``X-Amz-Function-Error: Unhandled`` and the error when the
handler fails; ``Event``: 202; ``DryRun``: 204), and hands every other request to ``app`` (moto).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import unquote

from aurora_clone.local.lambda_runtime import FunctionError
from aurora_clone.local.world import WsgiApp

_INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")


class Lambdas(Protocol):
    def is_registered(self, function_name_or_arn: str) -> bool: ...

    def invoke(self, function_name_or_arn: str, event: Mapping[str, Any]) -> Any: ...

    def invoke_async(self, function_name_or_arn: str, event: Mapping[str, Any]) -> Any: ...


class LambdaInvokeApi:
    def __init__(self, lambdas: Lambdas) -> None:
        self._lambdas = lambdas

    def in_front_of(self, app: WsgiApp) -> WsgiApp:
        def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            match = _INVOKE_PATH.match(environ.get("PATH_INFO", ""))
            name = unquote(match["name"]) if match else ""
            if environ.get("REQUEST_METHOD") != "POST" or not name or not self._lambdas.is_registered(name):
                return app(environ, start_response)
            size = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(size) if size else b""
            status, headers, body = self.invoke(name, environ.get("HTTP_X_AMZ_INVOCATION_TYPE", ""), raw)
            start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *headers])
            return [body]

        return serve

    def invoke(self, name: str, invocation_type: str, raw: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
        try:
            event = json.loads(raw) if raw else {}
        except ValueError:
            error = {"Type": "User", "message": "Could not parse request body into json"}
            return (
                "400 Bad Request",
                [("X-Amzn-ErrorType", "InvalidRequestContentException")],
                json.dumps(error).encode(),
            )
        if invocation_type == "DryRun":
            return "204 No Content", [], b""
        if invocation_type == "Event":
            self._lambdas.invoke_async(name, event)
            return "202 Accepted", [], b""
        try:
            result = self._lambdas.invoke(name, event)
        except FunctionError as failure:
            answer = {"errorType": failure.error_type, "errorMessage": failure.message}
            return "200 OK", [("X-Amz-Function-Error", "Unhandled")], json.dumps(answer).encode()
        return "200 OK", [("X-Amz-Executed-Version", "$LATEST")], json.dumps(result).encode()
