"""IAM adapter: every IAM call of the responder. Reads return plain data; changes go through the Journal."""
from __future__ import annotations

import json
from typing import Any, Callable
from urllib.parse import unquote

from botocore.exceptions import ClientError

from responder.errors import error_code
from responder.journal import Journal

# IAM actions this adapter calls, for the member role's policy (see responder.permissions).
READ_ACTIONS = (
    "iam:GetUser",
    "iam:ListUserTags",
    "iam:ListAttachedUserPolicies",
    "iam:ListAccessKeys",
    "iam:GetUserPolicy",
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:GetInstanceProfile",
    "iam:GetAccessKeyLastUsed",
    "iam:GetLoginProfile",
    "iam:ListMFADevices",
    "iam:ListRoles",
)
CHANGE_ACTIONS = ("iam:AttachUserPolicy", "iam:UpdateAccessKey", "iam:PutUserPolicy", "iam:PutRolePolicy",
                  "iam:DeleteLoginProfile")
MEMBER_ACTIONS = READ_ACTIONS + CHANGE_ACTIONS
# What the release role (``<member role>-release``, stacks.member_stack) may do: read what it checks, and undo only
# the responder's own changes (responder.release). The containment member role gains none of the undo actions.
MEMBER_RELEASE_ACTIONS = ("iam:GetUser", "iam:ListAttachedUserPolicies", "iam:ListAccessKeys", "iam:GetUserPolicy",
                          "iam:DetachUserPolicy", "iam:UpdateAccessKey", "iam:DeleteUserPolicy",
                          "iam:GetInstanceProfile",  # an instance's original profile still exists
                          "iam:GetLoginProfile", "iam:CreateLoginProfile")  # restoreConsoleAccess


def _missing(exc: ClientError) -> bool:
    return error_code(exc) == "NoSuchEntity"


def _unless_missing(fetch: Callable[[], Any]) -> Any:
    """The read's result, or None when IAM answers NoSuchEntity; every other error propagates."""
    try:
        return fetch()
    except ClientError as exc:
        if _missing(exc):
            return None
        raise


def _document(raw: Any) -> dict:
    """IAM returns policy documents URL-encoded (real AWS) or already decoded (some SDK paths)."""
    if isinstance(raw, dict):
        return raw
    return json.loads(unquote(raw))


class Iam:
    def __init__(self, client: Any, journal: Journal):
        self._c = client
        self._j = journal

    # -- reads -----------------------------------------------------------------------------------------
    def get_user(self, name: str) -> dict | None:
        return _unless_missing(lambda: self._c.get_user(UserName=name)["User"])

    def user_tags(self, name: str) -> dict[str, str]:
        tags: dict[str, str] = {}
        for page in self._c.get_paginator("list_user_tags").paginate(UserName=name):
            tags.update({t["Key"]: t["Value"] for t in page.get("Tags", [])})
        return tags

    def attached_user_policies(self, name: str) -> set[str]:
        arns: set[str] = set()
        for page in self._c.get_paginator("list_attached_user_policies").paginate(UserName=name):
            arns.update(p["PolicyArn"] for p in page.get("AttachedPolicies", []))
        return arns

    def access_key_owner(self, key_id: str) -> str | None:
        """The name of the IAM user that owns the access key (GetAccessKeyLastUsed), or None if IAM knows no such
        key. Callers confirm the key is among that user's keys in this account before trusting the name."""
        return _unless_missing(lambda: self._c.get_access_key_last_used(AccessKeyId=key_id).get("UserName") or None)

    def login_profile(self, name: str) -> dict | None:
        """The user's console password profile (UserName, CreateDate, PasswordResetRequired), or None."""
        return _unless_missing(lambda: self._c.get_login_profile(UserName=name)["LoginProfile"])

    def access_keys(self, name: str) -> list[dict]:
        keys: list[dict] = []
        for page in self._c.get_paginator("list_access_keys").paginate(UserName=name):
            keys.extend(page.get("AccessKeyMetadata", []))
        return keys

    def user_policy(self, user: str, policy: str) -> dict | None:
        return _unless_missing(lambda: _document(
            self._c.get_user_policy(UserName=user, PolicyName=policy)["PolicyDocument"]))

    def get_role(self, name: str) -> dict | None:
        """The role with its tags (GetRole returns them), or None if it does not exist."""
        return _unless_missing(lambda: self._c.get_role(RoleName=name)["Role"])

    def instance_profile(self, name: str) -> dict | None:
        """The instance profile with its roles (a profile holds at most one), or None if it does not exist."""
        return _unless_missing(lambda: self._c.get_instance_profile(InstanceProfileName=name)["InstanceProfile"])

    def role_policy(self, role: str, policy: str) -> dict | None:
        return _unless_missing(lambda: _document(
            self._c.get_role_policy(RoleName=role, PolicyName=policy)["PolicyDocument"]))

    def mfa_devices(self, name: str) -> list[dict]:
        """The user's MFA devices (SerialNumber, EnableDate); [] when the user does not exist."""
        return _unless_missing(lambda: self._c.list_mfa_devices(UserName=name).get("MFADevices") or []) or []

    def roles(self, *, pages: int) -> tuple[list[dict], bool]:
        """(the account's roles with their trust policies, truncated) reading at most `pages` pages of 100
        (ListRoles returns ``AssumeRolePolicyDocument``; tags and last use are not part of it)."""
        found: list[dict] = []
        params: dict[str, Any] = {"MaxItems": 100}
        for _ in range(pages):
            page = self._c.list_roles(**params)
            found += [dict(r, AssumeRolePolicyDocument=_document(r["AssumeRolePolicyDocument"]))
                      if r.get("AssumeRolePolicyDocument") else r for r in page.get("Roles") or []]
            if not page.get("IsTruncated") or not page.get("Marker"):
                return found, False
            params["Marker"] = page["Marker"]
        return found, True

    # -- changes ---------------------------------------------------------------------------------------
    def attach_user_policy(self, user: str, policy_arn: str, *, target: str) -> None:
        self._j.call(self._c, "attach_user_policy", target=target, UserName=user, PolicyArn=policy_arn)

    def deactivate_access_key(self, user: str, key_id: str, *, target: str) -> None:
        self._j.call(
            self._c, "update_access_key", target=target, UserName=user, AccessKeyId=key_id, Status="Inactive"
        )

    def delete_login_profile(self, user: str, *, target: str) -> None:
        self._j.call(self._c, "delete_login_profile", target=target, accept=("NoSuchEntity",), UserName=user)

    def put_user_policy(self, user: str, name: str, document: dict, *, target: str) -> None:
        self._j.call(
            self._c, "put_user_policy", target=target, UserName=user, PolicyName=name,
            PolicyDocument=json.dumps(document, separators=(",", ":")),
        )

    def put_role_policy(self, role: str, name: str, document: dict, *, target: str) -> None:
        self._j.call(
            self._c, "put_role_policy", target=target, RoleName=role, PolicyName=name,
            PolicyDocument=json.dumps(document, separators=(",", ":")),
        )

    # -- undo (the release role only: responder.release) --------------------------------------------------
    def detach_user_policy(self, user: str, policy_arn: str, *, target: str) -> None:
        self._j.call(self._c, "detach_user_policy", target=target, UserName=user, PolicyArn=policy_arn)

    def activate_access_key(self, user: str, key_id: str, *, target: str) -> None:
        self._j.call(self._c, "update_access_key", target=target, UserName=user, AccessKeyId=key_id, Status="Active")

    def create_login_profile(self, user: str, password: str, *, target: str) -> None:
        """A release (restoreConsoleAccess): a console password that must be changed at the first sign-in."""
        self._j.call(self._c, "create_login_profile", target=target, UserName=user, Password=password,
                     PasswordResetRequired=True)

    def delete_user_policy(self, user: str, name: str, *, target: str) -> None:
        self._j.call(self._c, "delete_user_policy", target=target, UserName=user, PolicyName=name)
