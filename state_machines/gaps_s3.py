"""S3 gap: moto applies a bucket policy's statements without their conditions. It understands only
`StringEquals`, and a statement whose condition it cannot evaluate applies unconditionally, so the stacks' TLS-only
statement (Deny s3:* when `aws:SecureTransport` is false) denies every request.

AWS applies a statement only when all of its conditions hold for the request, and a condition on a key absent from
the request context does not hold (unless the operator ends in `IfExists`, or is `Null`, which tests presence).
Restored here for the request context of the local runtime, built per object request:

* `aws:SecureTransport` true (every request is made over HTTPS);
* `aws:PrincipalArn`: the caller's role ARN for a role session (gaps_sts.caller_arn), so "only the forensics role
  writes" and "nobody but the custodian deletes" hold as in AWS;
* `s3:if-none-match` from the `If-None-Match` header, and `s3:ObjectCreationOperation` (false for
  CreateMultipartUpload, UploadPart and UploadPartCopy, true for the other writes), as the S3 User Guide's
  "Enforce conditional writes on Amazon S3 buckets" describes: a bucket policy can refuse a write without the
  header (moto honours the header itself - `PreconditionFailed` - but knows neither key);
* `s3:x-amz-server-side-encryption` and `s3:x-amz-server-side-encryption-aws-kms-key-id` from their headers.

Statements conditioned on other keys (e.g. the access-log delivery's `aws:SourceArn`) do not apply to the
responder's requests.
"""
from __future__ import annotations

import json
from contextlib import ExitStack
from contextvars import ContextVar
from fnmatch import fnmatchcase
from typing import Any
from unittest import mock

REQUEST_CONTEXT = {"aws:SecureTransport": "true"}
_CONTEXT: ContextVar[dict[str, str] | None] = ContextVar("_CONTEXT", default=None)
_HEADER_KEYS = {"If-None-Match": "s3:if-none-match",
                "x-amz-server-side-encryption": "s3:x-amz-server-side-encryption",
                "x-amz-server-side-encryption-aws-kms-key-id": "s3:x-amz-server-side-encryption-aws-kms-key-id"}


def request_context(method: str, query: dict, headers: Any, principal_arn: str | None) -> dict[str, str]:
    """The condition keys of one object request."""
    context = dict(REQUEST_CONTEXT)
    if principal_arn:
        context["aws:PrincipalArn"] = principal_arn
    for header, key in _HEADER_KEYS.items():
        value = headers.get(header) if headers is not None else None
        if value is not None:
            context[key] = str(value)
    if method in ("PUT", "POST"):
        multipart_step = "uploads" in query or ("partNumber" in query and "uploadId" in query)
        context["s3:ObjectCreationOperation"] = "false" if multipart_step else "true"
    return context


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
            if operator == "Null":  # "true": the key is absent from the request; "false": present
                wanted = str(expected[0] if isinstance(expected, list) else expected).lower() == "true"
                if (actual is None) != wanted:
                    return False
                continue
            if actual is None:
                if if_exists:
                    continue
                return False
            if not _holds(operator, actual, expected if isinstance(expected, list) else [expected]):
                return False
    return True


def install(stack: ExitStack) -> None:
    from urllib.parse import parse_qs, urlparse

    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.s3.models import FakeBucket
    from moto.s3.responses import S3Response

    from state_machines import gaps_sts

    original_key_response = S3Response._key_response

    def _key_response(self, request: Any, full_url: str) -> Any:
        query = parse_qs(urlparse(full_url).query, keep_blank_values=True)
        caller = gaps_sts.caller_arn(gaps_sts.access_key_of(request.headers))
        token = _CONTEXT.set(request_context(request.method, query, request.headers, caller))
        try:
            return original_key_response(self, request, full_url)
        finally:
            _CONTEXT.reset(token)

    def get_permission(self, action: str, resource: str) -> Any:
        if self.policy is None:
            return PermissionResult.NEUTRAL
        document = json.loads(self.policy.decode() if isinstance(self.policy, bytes) else self.policy)
        statements = document.get("Statement", [])
        statements = statements if isinstance(statements, list) else [statements]
        applying = [{k: v for k, v in s.items() if k != "Condition"} for s in statements
                    if conditions_hold(s.get("Condition") or {}, _CONTEXT.get() or REQUEST_CONTEXT)]
        if not applying:
            return PermissionResult.NEUTRAL
        return IAMPolicy(json.dumps({"Version": "2012-10-17", "Statement": applying})).is_action_permitted(
            action, resource)

    stack.enter_context(mock.patch.object(FakeBucket, "get_permission", get_permission))
    stack.enter_context(mock.patch.object(S3Response, "_key_response", _key_response))
