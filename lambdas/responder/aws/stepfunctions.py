"""Step Functions adapter: is an earlier execution of the containment state machine still running?

Triage asks this only when a finding's incident record says "in progress": a re-published finding is a duplicate
while the first response runs, and may take over once that execution has ended without recording an outcome.
"""
from __future__ import annotations

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
