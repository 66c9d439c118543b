"""STS gap: moto's AssumeRole succeeds for any role ARN, even one that does not exist. AWS refuses (AccessDenied)
unless the role exists and its trust policy admits the caller, and checks `sts:ExternalId` when the trust policy
requires one. Restored here so a finding for an account without the member stack fails like it does in AWS.

The role `ir-local-admin` (see local.LOCAL_ADMIN_ROLE) stands for OrganizationAccountAccessRole: the local
runtime uses it to build worlds and read results in any account.
"""
from __future__ import annotations

import json
from contextlib import ExitStack
from unittest import mock
from urllib.parse import unquote

LOCAL_ADMIN_ROLE = "ir-local-admin"


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
        return original(self, region_name, role_session_name, role_arn, policy, duration, external_id)

    stack.enter_context(mock.patch.object(STSBackend, "assume_role", assume_role))
