"""S3 gap: moto applies a bucket policy's statements without their conditions. It understands only
`StringEquals`, and a statement whose condition it cannot evaluate applies unconditionally, so the stacks' TLS-only
statement (Deny s3:* when `aws:SecureTransport` is false) denies every request.

AWS applies a statement only when all of its conditions hold for the request, and a condition on a key absent from
the request context does not hold (unless the operator ends in `IfExists`). Restored here for the request context
of the local runtime: every request is made over HTTPS (`aws:SecureTransport` true). Statements conditioned on
other keys (e.g. the access-log delivery's `aws:SourceArn`) do not apply to the responder's requests.
"""
from __future__ import annotations

import json
from contextlib import ExitStack
from fnmatch import fnmatchcase
from typing import Any
from unittest import mock

REQUEST_CONTEXT = {"aws:SecureTransport": "true"}


def _holds(operator: str, actual: str, expected: list[str]) -> bool:
    """Does one condition operator hold? An operator not understood here does not (the statement is skipped)."""
    if operator == "Bool":
        return actual.lower() in [str(e).lower() for e in expected]
    if operator in ("StringEquals", "ArnEquals"):
        return actual in expected
    if operator in ("StringNotEquals", "ArnNotEquals"):
        return actual not in expected
    if operator in ("StringLike", "ArnLike"):
        return any(fnmatchcase(actual, e) for e in expected)
    if operator in ("StringNotLike", "ArnNotLike"):
        return not any(fnmatchcase(actual, e) for e in expected)
    return False


def conditions_hold(condition: dict[str, dict[str, Any]], context: dict[str, str]) -> bool:
    for raw_operator, pairs in condition.items():
        if_exists = raw_operator.endswith("IfExists")
        operator = raw_operator[: -len("IfExists")] if if_exists else raw_operator
        for key, expected in pairs.items():
            actual = context.get(key)
            if actual is None:
                if if_exists:
                    continue
                return False
            if not _holds(operator, actual, expected if isinstance(expected, list) else [expected]):
                return False
    return True


def install(stack: ExitStack) -> None:
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.s3.models import FakeBucket

    def get_permission(self, action: str, resource: str) -> Any:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        document = json.loads(self.policy.decode() if isinstance(self.policy, bytes) else self.policy)
        statements = document.get("Statement", [])
        statements = statements if isinstance(statements, list) else [statements]
        applying = [{k: v for k, v in s.items() if k != "Condition"} for s in statements
                    if conditions_hold(s.get("Condition") or {}, REQUEST_CONTEXT)]
        if not applying:
            return PermissionResult.NEUTRAL
        return IAMPolicy(json.dumps({"Version": "2012-10-17", "Statement": applying})).is_action_permitted(
            action, resource)

    stack.enter_context(mock.patch.object(FakeBucket, "get_permission", get_permission))
