"""STS gap: moto's AssumeRole succeeds for any role ARN, even one that does not exist. AWS refuses (AccessDenied)
unless the role exists and its trust policy admits the caller, and checks `sts:ExternalId` when the trust policy
requires one. Restored here so a finding for an account without the member stack fails like it does in AWS.

Session lifetimes, which moto does not enforce (IAM User Guide, "Methods to assume a role" and "Role chaining";
STS API reference, AssumeRole `DurationSeconds`):

* a `DurationSeconds` above the role's `MaxSessionDuration` fails (ValidationError). (Above an hour it also fails
  when the caller is itself an assumed role - role chaining, as a Lambda function's role is - which the local
  functions, signing with long-term test keys, are not: aws/clients.py asks for exactly an hour.)
* a request signed with session credentials past their expiry is refused with `ExpiredToken` (query and XML
  protocols) or `ExpiredTokenException` (JSON protocols). Enforced for every session but the local
  administrator's, on every service moto dispatches through its generic action handler (not S3). `local.time_passes`
  moves this clock (and the responder's credential clock) ahead to test it.

Who may assume a role (IAM User Guide, "Policy evaluation logic: cross-account" and "AWS global condition context
keys", `aws:PrincipalArn`): moto admits any caller. For a caller that is itself a role session (the credentials an
attacker steals from a responder role, for instance), the trust policy is evaluated here: an Allow statement for
sts:AssumeRole must name the caller's account root or its role ARN as principal, and its `aws:PrincipalArn`
conditions (`ArnEquals`/`ArnLike`/`StringEquals`/`StringLike`) must admit the caller's role ARN; otherwise
AccessDenied. Callers signing with long-term keys are not checked: the in-process handlers sign with the local test
key and stand for the function roles, whose exact ARNs the trusts name (proven on the templates).

The role `ir-local-admin` (see local.LOCAL_ADMIN_ROLE) stands for OrganizationAccountAccessRole: the local
runtime uses it to build worlds and read results in any account (its sessions are not checked either).

`caller_arn()` gives the other gaps the `aws:PrincipalArn` of the request being served.
"""
from __future__ import annotations

import json
import re
from contextlib import ExitStack
from contextvars import ContextVar
from fnmatch import fnmatchcase
from datetime import datetime, timedelta, timezone
from unittest import mock
from urllib.parse import unquote

import botocore.session

LOCAL_ADMIN_ROLE = "ir-local-admin"
_clock = {"offset": 0.0}
_issued: dict[str, datetime] = {}  # access key id -> expiry of every session but the local administrator's
_SERVICES = frozenset(botocore.session.get_session().get_available_services())
_CREDENTIAL = re.compile(r"Credential=([A-Z0-9]+)/")
_REQUEST_KEY: ContextVar[str | None] = ContextVar("_REQUEST_KEY", default=None)


def access_key_of(headers) -> str | None:
    """The access key id a request was signed with (SigV4 Authorization header)."""
    match = _CREDENTIAL.search(str((headers or {}).get("Authorization") or ""))
    return match.group(1) if match else None


def session_of(access_key: str | None):
    """moto's assumed-role session for an access key id, or None (a long-term key)."""
    if not access_key:
        return None
    from moto.sts.models import sts_backends

    for account in list(sts_backends.keys()):
        for partition in list(sts_backends[account].keys()):
            found = sts_backends[account][partition].get_assumed_role_from_access_key(access_key)
            if found is not None:
                return found
    return None


def caller_arn(access_key: str | None) -> str | None:
    """`aws:PrincipalArn` of the credentials: a role session's role ARN, an IAM user's ARN, or the account root of
    the local test key; None when unknown."""
    if not access_key:
        return None
    found = session_of(access_key)
    if found is not None:
        return found.role_arn
    from moto.iam.models import get_account_id_from, iam_backends

    account = get_account_id_from(access_key)
    for partition in ("aws",):
        key = iam_backends[account][partition].access_keys.get(access_key)
        if key is not None:
            return f"arn:{partition}:iam::{account}:user/{key.user_name}"
    return f"arn:aws:iam::{account}:root"


def _principals(statement: dict) -> list[str]:
    principal = statement.get("Principal") or {}
    value = principal.get("AWS", []) if isinstance(principal, dict) else principal
    return [value] if isinstance(value, str) else list(value)


def trust_admits(trust_policy: str, role_arn: str) -> bool:
    """Does the trust policy let a session of `role_arn` assume the role (principal and aws:PrincipalArn)?"""
    try:
        doc = json.loads(unquote(trust_policy)) if isinstance(trust_policy, str) else trust_policy
    except ValueError:
        return False
    account = role_arn.split(":")[4]
    for statement in doc.get("Statement", []) if isinstance(doc, dict) else []:
        actions = statement.get("Action") or []
        actions = [actions] if isinstance(actions, str) else actions
        if statement.get("Effect") != "Allow" or not any(fnmatchcase("sts:AssumeRole", a) for a in actions):
            continue
        named = _principals(statement)
        if not any(p in ("*", role_arn, account, f"arn:aws:iam::{account}:root") for p in named):
            continue
        admitted = True
        for operator, pairs in (statement.get("Condition") or {}).items():
            if "aws:PrincipalArn" not in pairs:
                continue
            expected = pairs["aws:PrincipalArn"]
            expected = [expected] if isinstance(expected, str) else expected
            if operator in ("ArnEquals", "StringEquals"):
                admitted = admitted and role_arn in expected
            elif operator in ("ArnLike", "StringLike"):
                admitted = admitted and any(fnmatchcase(role_arn, e) for e in expected)
            else:
                admitted = False  # an operator this gap does not evaluate: fail closed
        if admitted:
            return True
    return False


def now() -> datetime:
    """The in-memory AWS's clock: real time, moved ahead by `advance`."""
    return datetime.now(timezone.utc) + timedelta(seconds=_clock["offset"])


def advance(seconds: float) -> None:
    _clock["offset"] += seconds


def reset_clock() -> None:
    _clock["offset"] = 0.0
    _issued.clear()


def _external_ids(trust_policy: str) -> set[str] | None:
    """The ExternalId values the trust policy requires, or None if it requires none."""
    try:
        doc = json.loads(unquote(trust_policy)) if isinstance(trust_policy, str) else trust_policy
    except ValueError:
        return None
    required: set[str] = set()
    for statement in doc.get("Statement", []) if isinstance(doc, dict) else []:
        for op, conditions in (statement.get("Condition") or {}).items():
            if op.startswith("StringEquals") and "sts:ExternalId" in conditions:
                value = conditions["sts:ExternalId"]
                required.update([value] if isinstance(value, str) else value)
    return required or None


def _expired(protocol: str) -> tuple[int, dict[str, str], str]:
    """The error response AWS sends for an expired token, in the service's protocol."""
    message = "The security token included in the request is expired"
    if "json" in protocol:
        return 400, {"x-amzn-ErrorType": "ExpiredTokenException", "Content-Type": "application/x-amz-json-1.1"}, \
            json.dumps({"__type": "ExpiredTokenException", "message": message})
    if protocol == "ec2":
        body = (f"<Response><Errors><Error><Code>ExpiredToken</Code><Message>{message}</Message></Error></Errors>"
                "<RequestID>expired</RequestID></Response>")
    elif protocol == "query":
        body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>ExpiredToken</Code><Message>{message}</Message>"
                "</Error><RequestId>expired</RequestId></ErrorResponse>")
    else:
        body = f"<Error><Code>ExpiredToken</Code><Message>{message}</Message></Error>"
    return 400, {"Content-Type": "text/xml"}, body


def install(stack: ExitStack) -> None:
    from moto.iam.models import iam_backends
    from moto.sts.exceptions import STSClientError
    from moto.sts.models import STSBackend

    original = STSBackend.assume_role

    def assume_role(self, region_name, role_session_name, role_arn, policy, duration, external_id):
        try:
            account, rest = role_arn.split(":")[4], role_arn.split(":", 5)[5]
            name = rest.split("/")[-1]
        except (IndexError, ValueError):
            raise STSClientError("ValidationError", f"{role_arn} is not a role ARN")
        if name != LOCAL_ADMIN_ROLE:
            backend = iam_backends[account]["aws"]
            role = next((r for r in backend.get_roles() if r.arn == role_arn), None)
            if role is None:
                raise STSClientError(
                    "AccessDenied", f"User is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
                )
            required = _external_ids(role.assume_role_policy_document)
            if required is not None and external_id not in required:
                raise STSClientError(
                    "AccessDenied", f"sts:ExternalId does not match the trust policy of {role_arn}"
                )
            caller = session_of(_REQUEST_KEY.get())
            if (caller is not None and not caller.role_arn.endswith(f"/{LOCAL_ADMIN_ROLE}")
                    and not trust_admits(role.assume_role_policy_document, caller.role_arn)):
                raise STSClientError(
                    "AccessDenied", f"{caller.arn} is not authorized to perform: sts:AssumeRole on resource: "
                                    f"{role_arn} (its trust policy does not admit {caller.role_arn})")
            limit = int(role.max_session_duration or 3600)
            if duration > limit:
                raise STSClientError("ValidationError", "The requested DurationSeconds exceeds the "
                                                        "MaxSessionDuration set for this role.")
        assumed = original(self, region_name, role_session_name, role_arn, policy, duration, external_id)
        assumed.expiration = now().replace(tzinfo=None) + timedelta(seconds=duration)  # moto's naive UTC
        if name != LOCAL_ADMIN_ROLE:  # the local runtime's own administrator sessions never expire
            _issued[assumed.access_key_id] = now() + timedelta(seconds=duration)
        return assumed

    def call_action(self):
        key = access_key_of(self.headers)
        expiry = _issued.get(key) if key else None
        if expiry is not None and expiry <= now() and self.boto3_service_name in _SERVICES:
            return _expired(botocore.session.get_session().get_service_model(self.boto3_service_name).protocol)
        token = _REQUEST_KEY.set(key)
        try:
            return original_call_action(self)
        finally:
            _REQUEST_KEY.reset(token)

    from moto.core.responses import BaseResponse

    original_call_action = BaseResponse.call_action
    reset_clock()
    stack.callback(reset_clock)
    stack.enter_context(mock.patch.object(STSBackend, "assume_role", assume_role))
    stack.enter_context(mock.patch.object(BaseResponse, "call_action", call_action))
