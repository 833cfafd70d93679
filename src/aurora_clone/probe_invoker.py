"""Invokes the connection check's function (``aurora_clone.probe``) and reads its answer: the gateway the
clone resource uses when the function stack has a connection check.

The event names the clone and nothing else (``{"cluster": "<identifier>"}``, ``ProbeRequest.to_event``): the
probe reads its endpoint, port, engine and managed secret from RDS itself."""

from __future__ import annotations

import json

from aurora_clone.aws_clients import LambdaFunction
from aurora_clone.connection_check import ProbeRequest, ProbeResult


class ProbeInvoker:
    """``probe(request)``: the probe function's result. AWS errors (throttling, 5xx) are raised: the
    request is looked at again at its next wake-up."""

    def __init__(self, function_name: str) -> None:
        self.function = LambdaFunction(function_name)

    def start_prepare(self, request: ProbeRequest) -> None:
        """Invoke the function (asynchronously: a script may run for minutes) to run the prepare script of the
        request ``request.prepare`` names; it writes how the run ended in the request table."""
        self.function.invoke(request.to_event(), wait=False)

    def probe(self, request: ProbeRequest) -> ProbeResult:
        """Invoke the probe (synchronously) to check the cluster ``request`` names."""
        answer = self.function.invoke(request.to_event(), wait=True)
        body = answer["Payload"].read()
        if answer.get("FunctionError"):
            return ProbeResult(
                False, "probe", f"the connection check function failed: {body.decode(errors='replace')[:500]}"
            )
        try:
            return ProbeResult.from_payload(json.loads(body))
        except ValueError:
            return ProbeResult.from_payload(None)
