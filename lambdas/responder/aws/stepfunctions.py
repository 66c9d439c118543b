"""Step Functions adapter: is an earlier execution of the containment state machine still running? What was its input?

Triage asks this only when a finding's incident record says "in progress": a re-published finding is a duplicate
while the first response runs, and may take over once that execution has ended without recording an outcome.
"""
from __future__ import annotations

import json
from typing import Any

RESPONDER_ACTIONS = ("states:DescribeExecution",)


class Executions:
    def __init__(self, client: Any):
        self._c = client

    def status(self, execution_arn: str) -> str:
        """RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, PENDING_REDRIVE; `MISSING` if it does not exist."""
        try:
            return self._c.describe_execution(executionArn=execution_arn)["status"]
        except self._c.exceptions.ExecutionDoesNotExist:
            return "MISSING"

    def input(self, execution_arn: str) -> Any:
        """The execution's input exactly as it was started (JSON-decoded; None when Step Functions does not
        include it). Step Functions keeps it with the execution: the workflow's state carries only the
        normalized incident, and Finalize reads the raw input back from here for the manifest."""
        text = self._c.describe_execution(executionArn=execution_arn).get("input")
        return json.loads(text) if text else None
