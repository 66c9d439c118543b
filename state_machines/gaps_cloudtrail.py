"""CloudTrail gap: moto has no event history (`LookupEvents` is not implemented).

Restored as AWS behaves: every management call the in-memory AWS serves with the credentials of an IAM user (an
access key) or of an assumed-role session is recorded as an event of the account and Region it acted in, and
`LookupEvents` answers from those records - one lookup attribute (AccessKeyId, EventId, EventName, EventSource,
ReadOnly, ResourceName, ResourceType, Username), ``[StartTime, EndTime]``, newest first, at most 50 events per
page with ``NextToken``, AWS's validation errors. ``Username`` is the user name for an IAM user and the session
name for an assumed role; an AssumeRole event names the role's ARN as its resource. Data events (DynamoDB items,
SNS Publish, EBS direct APIs, Lambda Invoke) are not in event history, so they are not recorded either.

So a world built in the in-memory AWS (an attacker's calls made with a user's key) shows up in the responder's
scope capture exactly as it would from CloudTrail.

What each record holds, as the CloudTrail User Guide's record contents and the services' CloudTrail pages show:

* ``requestParameters``: the call's parameters with camelCase names - query-protocol services (IAM, STS) from the
  form (`request_parameters`), JSON-protocol services (KMS, Secrets Manager, Systems Manager) from the body
  (``{"keyId": ..., "granteePrincipal": ..., "operations": [...]}`` for CreateGrant, ``{"secretId": ...}`` for
  GetSecretValue, ``{"name": ..., "withDecryption": true}`` for GetParameter);
* ``responseElements``: null for reads and most calls; for the calls whose result the IAM and STS CloudTrail
  examples show (`RESPONSE_ELEMENTS`: CreateAccessKey's ``accessKey`` without the secret, CreateUser's ``user``,
  CreateRole's ``role``, CreateLoginProfile's ``loginProfile``, AssumeRole's ``assumedRoleUser`` and the
  credentials' ``accessKeyId``/``expiration``) the response with camelCase names; for KMS CreateGrant
  ``{"grantId", "keyId"}`` with the key's ARN ("CloudTrail log entries for this operation recorded on or after
  December 2022 include the key ARN of the affected KMS key in the responseElements.keyId value, even though this
  operation does not return the key ARN", AWS KMS Developer Guide, CreateGrant log entry);
* ``resources``: the role for AssumeRole, the key for CreateGrant (``[{"ARN", "accountId"}]``, as both examples
  show), also answering LookupEvents' ``ResourceName``.
"""
from __future__ import annotations

import base64
import json
import threading
import uuid
from contextlib import ExitStack
from datetime import datetime, timezone
from typing import Any
from unittest import mock

ATTRIBUTES = ("EventId", "EventName", "ReadOnly", "Username", "ResourceType", "ResourceName", "EventSource",
              "AccessKeyId")
DATA_EVENTS = {
    "dynamodb": {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem",
                 "BatchWriteItem", "TransactGetItems", "TransactWriteItems"},
    "sns": {"Publish", "PublishBatch"},
    "ebs": {"ListSnapshotBlocks", "ListChangedBlocks", "GetSnapshotBlock", "PutSnapshotBlock",
            "StartSnapshot", "CompleteSnapshot"},
    "lambda": {"Invoke"},
}
# The calls whose response CloudTrail records (responseElements), with the fields it leaves out (secrets).
RESPONSE_ELEMENTS = {
    ("iam", "CreateAccessKey"): ("secretAccessKey",),
    ("iam", "CreateUser"): (),
    ("iam", "CreateRole"): ("assumeRolePolicyDocument",),
    ("iam", "CreateLoginProfile"): (),
    ("sts", "AssumeRole"): ("secretAccessKey", "sessionToken"),
}
READ_PREFIXES = ("Get", "List", "Describe", "Head", "Lookup", "BatchGet", "Search", "Scan", "Query")

_events: list[dict[str, Any]] = []
_identities: dict[str, dict[str, Any]] = {}  # access key -> identity (a key never changes its owner)
_lock = threading.Lock()
_depth = [0]  # nested in-memory AWS contexts share one history, like moto's own state


def events() -> list[dict[str, Any]]:
    """Every recorded event (oldest first): for tests that want to look at the raw history."""
    with _lock:
        return list(_events)


def _identity(access_key: str, account: str) -> dict[str, Any] | None:
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    if access_key.startswith("ASIA"):
        for acct in list(sts_backends):
            for backend in sts_backends[acct].values():
                role = backend.get_assumed_role_from_access_key(access_key)
                if role is not None:
                    role_name = role.role_arn.rsplit("/", 1)[-1]
                    return {"type": "AssumedRole", "username": role.session_name, "userIdentity": {
                        "type": "AssumedRole", "arn": role.arn, "accountId": role.account_id,
                        "accessKeyId": access_key,
                        "sessionContext": {"sessionIssuer": {"type": "Role", "arn": role.role_arn,
                                                             "accountId": role.account_id, "userName": role_name}}}}
        return None
    for acct in [account] + [a for a in list(iam_backends) if a != account]:
        for backend in iam_backends[acct].values():
            user = backend.get_user_from_access_key_id(access_key)
            if user is not None:
                return {"type": "IAMUser", "username": user.name, "userIdentity": {
                    "type": "IAMUser", "principalId": user.id, "arn": user.arn, "accountId": user.account_id,
                    "accessKeyId": access_key, "userName": user.name}}
    return None


def _record(response: Any, handler: Any) -> None:
    access_key = getattr(handler, "access_key", "") or ""
    if len(access_key) != 20 or access_key[:4] not in ("AKIA", "ASIA"):
        return  # not an IAM user's key nor a session: the harness's own credentials
    service = getattr(handler, "service_name", "") or ""
    action = handler._get_action() or ""
    if action in DATA_EVENTS.get(service, ()):
        return
    identity = _identities.get(access_key) or _identity(access_key, handler.current_account)
    if identity is None:
        return
    _identities[access_key] = identity
    query = getattr(handler, "querystring", None) or {}
    params = request_parameters({k: v[0] if isinstance(v, list) and len(v) == 1 else v for k, v in query.items()
                                 if k not in ("Action", "Version")})
    body = _json_body(handler)
    if body is not None:
        params = {_camel(k): v for k, v in body.items()}
    status = response[0] if isinstance(response, tuple) and response and isinstance(response[0], int) else 200
    accounts = [handler.current_account]
    resources = []
    elements = _response_elements(service, action, response, status, handler, params)
    if service == "sts" and action == "AssumeRole" and params.get("roleArn"):
        resources.append({"ResourceType": "AWS::IAM::Role", "ResourceName": params["roleArn"]})
        role_account = str(params["roleArn"]).split(":")[4:5]
        if role_account and role_account[0] not in accounts:
            accounts.append(role_account[0])
    if service == "kms" and action == "CreateGrant" and elements:
        resources.append({"ResourceType": "AWS::KMS::Key", "ResourceName": elements["keyId"]})
    now = datetime.now(timezone.utc)
    # CloudTrail's userAgent is the agent the request was made through (CloudTrail User Guide, "CloudTrail record
    # contents": userAgent), i.e. the caller's User-Agent header, whatever it says
    headers = getattr(handler, "headers", None) or {}
    agent = str(headers.get("User-Agent") or headers.get("user-agent") or "local")[:1000]
    for account in accounts:
        record = {
            "eventVersion": "1.08", "eventTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": f"{service}.amazonaws.com", "eventName": action, "awsRegion": handler.region,
            "sourceIPAddress": "198.51.100.7", "userAgent": agent, "userIdentity": identity["userIdentity"],
            "requestParameters": params or None, "responseElements": elements, "eventID": str(uuid.uuid4()), "readOnly": action.startswith(READ_PREFIXES),
            "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": account,
        }
        if resources:
            record["resources"] = [{"ARN": r["ResourceName"], "accountId": r["ResourceName"].split(":")[4]}
                                   for r in resources]
        if status >= 400:
            record["errorCode"] = str(status)
        with _lock:
            _events.append({"account": account, "region": handler.region, "time": now, "username": identity["username"],
                            "accessKeyId": access_key, "resources": resources, "record": record})


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _json_body(handler: Any) -> dict[str, Any] | None:
    """The parameters of a JSON-protocol call (KMS, Secrets Manager, SSM: ``X-Amz-Target``), else None."""
    headers = getattr(handler, "headers", None) or {}
    if not headers.get("X-Amz-Target") and not headers.get("x-amz-target"):
        return None
    try:
        body = json.loads(handler.body or "{}")
    except (TypeError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def _camel_all(value: Any, leave_out: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        return {_camel(k): _camel_all(v, leave_out) for k, v in value.items()
                if _camel(k) not in leave_out and k != "ResponseMetadata"}
    if isinstance(value, list):
        return [_camel_all(v, leave_out) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def _response_elements(service: str, action: str, response: Any, status: int, handler: Any,
                       params: dict[str, Any]) -> dict[str, Any] | None:
    if status >= 400 or not isinstance(response, tuple) or len(response) < 3:
        return None
    if service == "kms" and action == "CreateGrant":
        try:
            grant = json.loads(response[2])
            from moto.kms.models import kms_backends

            key = kms_backends[handler.current_account][handler.region].describe_key(params.get("keyId"))
        except Exception:  # noqa: BLE001 - no record of a response that cannot be read
            return None
        return {"grantId": grant.get("GrantId"), "keyId": key.arn}
    leave_out = RESPONSE_ELEMENTS.get((service, action))
    if leave_out is None:
        return None
    import botocore.session
    from botocore import parsers

    model = _models.get(service)
    if model is None:
        model = _models[service] = botocore.session.get_session().get_service_model(service)
    operation = model.operation_model(action)
    body = response[2].encode() if isinstance(response[2], str) else response[2]
    parsed = parsers.create_parser(model.metadata["protocol"]).parse(
        {"body": body, "headers": response[1] or {}, "status_code": status}, operation.output_shape)
    return _camel_all(parsed, leave_out) or None


_models: dict[str, Any] = {}


def request_parameters(flat: dict[str, Any]) -> dict[str, Any]:
    """Query-protocol parameters (``Tags.member.1.Key``) in the shape CloudTrail records them: camelCase names,
    lists as lists (``{"userName": "bob", "tags": [{"key": "ir:protected", "value": "true"}]}``, as a TagUser
    event shows in the CloudTrail User Guide's IAM examples)."""
    out: dict[str, Any] = {}
    lists: dict[str, dict[int, dict[str, Any]]] = {}
    for key, value in flat.items():
        parts = key.split(".")
        if len(parts) >= 3 and parts[1] == "member" and parts[2].isdigit():
            item = lists.setdefault(_camel(parts[0]), {}).setdefault(int(parts[2]), {})
            if len(parts) == 3:
                item[""] = value
            else:
                item[_camel(parts[3])] = value
        else:
            out[_camel(key)] = value
    for name, items in lists.items():
        out[name] = [item.get("", item) if set(item) == {""} else item for _, item in sorted(items.items())]
    return out


def _matches(event: dict[str, Any], key: str, value: str) -> bool:
    record = event["record"]
    return {
        "EventId": lambda: record["eventID"] == value,
        "EventName": lambda: record["eventName"] == value,
        "EventSource": lambda: record["eventSource"] == value,
        "ReadOnly": lambda: str(record["readOnly"]).lower() == value.lower(),
        "Username": lambda: event["username"] == value,
        "AccessKeyId": lambda: event["accessKeyId"] == value,
        "ResourceName": lambda: any(r["ResourceName"] == value for r in event["resources"]),
        "ResourceType": lambda: any(r["ResourceType"] == value for r in event["resources"]),
    }[key]()


def _time(value: Any, default: datetime) -> datetime:
    if value in (None, ""):
        return default
    return datetime.fromtimestamp(float(value), tz=timezone.utc)


def lookup_events(self) -> str:
    from moto.core.exceptions import JsonRESTError

    body = json.loads(self.body or "{}")
    attributes = body.get("LookupAttributes") or []
    if len(attributes) > 1:
        raise JsonRESTError("InvalidLookupAttributesException",
                            "You can specify only one lookup attribute per request.")
    for attribute in attributes:
        if attribute.get("AttributeKey") not in ATTRIBUTES or not attribute.get("AttributeValue"):
            raise JsonRESTError("InvalidLookupAttributesException", f"Invalid lookup attribute: {attribute}")
    limit = body.get("MaxResults", 50)
    if not isinstance(limit, int) or not 1 <= limit <= 50:
        raise JsonRESTError("InvalidMaxResultsException", "MaxResults must be between 1 and 50.")
    start = _time(body.get("StartTime"), datetime.min.replace(tzinfo=timezone.utc))
    end = _time(body.get("EndTime"), datetime.max.replace(tzinfo=timezone.utc))
    if start > end:
        raise JsonRESTError("InvalidTimeRangeException", "Start time must be before end time.")
    query = json.dumps([attributes, body.get("StartTime"), body.get("EndTime")], sort_keys=True)
    offset = 0
    if body.get("NextToken"):
        try:
            token = json.loads(base64.b64decode(body["NextToken"]))
            offset = int(token["offset"])
            if token["query"] != query:
                raise ValueError("token of another query")
        except (ValueError, KeyError, TypeError):
            raise JsonRESTError("InvalidNextTokenException", "Invalid NextToken.") from None
    with _lock:
        found = [e for e in _events if e["account"] == self.current_account and e["region"] == self.region
                 and start <= e["time"] <= end and all(_matches(e, a["AttributeKey"], a["AttributeValue"])
                                                         for a in attributes)]
    found.reverse()  # newest first
    page = found[offset:offset + limit]
    out: dict[str, Any] = {"Events": [{
        "EventId": e["record"]["eventID"], "EventName": e["record"]["eventName"],
        "ReadOnly": str(e["record"]["readOnly"]).lower(), "AccessKeyId": e["accessKeyId"],
        "EventTime": e["time"].timestamp(), "EventSource": e["record"]["eventSource"], "Username": e["username"],
        "Resources": e["resources"], "CloudTrailEvent": json.dumps(e["record"]),
    } for e in page]}
    if offset + limit < len(found):
        out["NextToken"] = base64.b64encode(json.dumps({"offset": offset + limit, "query": query}).encode()).decode()
    return json.dumps(out)


def _leave() -> None:
    with _lock:
        _depth[0] -= 1
        if _depth[0] == 0:
            _events.clear()
            _identities.clear()


def install(stack: ExitStack) -> None:
    from moto.cloudtrail.responses import CloudTrailResponse
    from moto.core.responses import BaseResponse

    original = BaseResponse.call_action

    def call_action(self):
        response = original(self)
        _record(response, self)
        return response

    with _lock:
        if _depth[0] == 0:
            _events.clear()
            _identities.clear()
        _depth[0] += 1
    stack.callback(_leave)
    stack.enter_context(mock.patch.object(BaseResponse, "call_action", call_action))
    stack.enter_context(mock.patch.object(CloudTrailResponse, "lookup_events", lookup_events, create=True))
