"""KMS gap: moto signs with any asymmetric key for any caller; it evaluates a key policy only for DescribeKey, and
only its Deny statements without conditions. AWS authorizes every request against the key policy (AWS KMS
Developer Guide, "Key policies in AWS KMS" and "Determining access to a KMS key"): an explicit Deny whose conditions
hold refuses the request; otherwise a statement must allow it - one naming the caller, or its account root (the
account then delegates to IAM policies, which moto does not evaluate either) - with its conditions holding.

Restored here for `kms:Sign`, the one call whose caller the chain of custody depends on: the custody key lets only
the custody signer role sign (stacks.policies.custody_key_policy), so a session of the forensics role, an
administrator or anyone else gets `AccessDeniedException`, as in AWS. The request context: `aws:PrincipalArn` (the
caller's role ARN for a role session, see gaps_sts.caller_arn), `kms:SigningAlgorithm`, `kms:MessageType`.

Grants: moto's grants have no ``CreationDate`` and no ``IssuingAccount``. AWS's ListGrants returns both for every
grant (KMS API Reference, GrantListEntry: "CreationDate - The date and time when the grant was created",
"IssuingAccount - The Amazon Web Services account under which the grant was issued", as
``arn:aws:iam::<account>:root``). The responder checks a grant the attacker created against its CreationDate
(responder.pivots), so the in-memory grants carry them: the time CreateGrant was served, and the key's account.
"""
from __future__ import annotations

import json
from contextlib import ExitStack
from datetime import datetime, timezone
from fnmatch import fnmatchcase
from typing import Any
from unittest import mock


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def sign_allowed(policy: str | dict | None, context: dict[str, str]) -> bool:
    """Does the key policy let this caller `kms:Sign`? `context` holds aws:PrincipalArn and the kms: keys."""
    from state_machines.gaps_s3 import conditions_hold

    try:
        document = json.loads(policy) if isinstance(policy, str) else (policy or {})
    except ValueError:
        return False
    caller = context.get("aws:PrincipalArn") or ""
    account = caller.split(":")[4] if caller.count(":") >= 5 else ""
    allowed = False
    for statement in document.get("Statement", []):
        if not any(fnmatchcase("kms:Sign", a) for a in _listed(statement.get("Action"))):
            continue
        if not conditions_hold(statement.get("Condition") or {}, context):
            continue
        principal = statement.get("Principal") or {}
        named = _listed(principal.get("AWS") if isinstance(principal, dict) else principal)
        applies = any(p in ("*", caller, account, f"arn:aws:iam::{account}:root") for p in named)
        if not applies:
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = True
    return allowed


def install(stack: ExitStack) -> None:
    from moto.kms.exceptions import AccessDeniedException
    from moto.kms.responses import KmsResponse

    from state_machines import gaps_sts

    original = KmsResponse.sign

    def sign(self):
        key = self.kms_backend.describe_key(self._get_param("KeyId"))
        context = {"aws:PrincipalArn": gaps_sts.caller_arn(gaps_sts.access_key_of(self.headers)) or "",
                   "kms:SigningAlgorithm": self._get_param("SigningAlgorithm") or "",
                   "kms:MessageType": self._get_param("MessageType") or "RAW"}
        if not sign_allowed(key.policy, context):
            raise AccessDeniedException(
                f"User: {context['aws:PrincipalArn']} is not authorized to perform: kms:Sign on resource: "
                f"{key.arn} because the key policy does not allow it")
        return original(self)

    stack.enter_context(mock.patch.object(KmsResponse, "sign", sign))
    _install_grant_dates(stack)


def _install_grant_dates(stack: ExitStack) -> None:
    from moto.kms.models import Grant, Key

    original_init, original_json, original_add = Grant.__init__, Grant.to_json, Key.add_grant

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.creation_date = datetime.now(timezone.utc).timestamp()
        self.issuing_account = None

    def to_json(self):
        out = original_json(self)
        out["CreationDate"] = getattr(self, "creation_date", None)
        if getattr(self, "issuing_account", None):
            out["IssuingAccount"] = self.issuing_account
        return {k: v for k, v in out.items() if v is not None}

    def add_grant(self, *args, **kwargs):
        grant = original_add(self, *args, **kwargs)
        partition = self.arn.split(":")[1]
        grant.issuing_account = f"arn:{partition}:iam::{self.account_id}:root"
        return grant

    stack.enter_context(mock.patch.object(Grant, "__init__", init))
    stack.enter_context(mock.patch.object(Grant, "to_json", to_json))
    stack.enter_context(mock.patch.object(Key, "add_grant", add_grant))
