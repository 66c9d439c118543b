"""IAM gaps, restored as AWS behaves:

* moto attaches any number of managed policies to a user. AWS does not: "Managed policies attached to an IAM user"
  is a quota of 10 by default (IAM User Guide, "IAM and AWS STS quotas"; adjustable up to 20), and AttachUserPolicy
  beyond it fails with ``LimitExceeded`` ("Cannot exceed quota for PoliciesPerUser: 10"). So a user an attacker has
  filled with policies meets the same refusal the responder meets in AWS.
* moto's UpdateUser renames the user but its access keys keep the old name, so GetAccessKeyLastUsed answers a
  user that no longer exists. In AWS a key belongs to the user, not to a name: GetAccessKeyLastUsed returns "the
  name of the IAM user that owns this access key" (IAM API Reference) - the current name.
* moto's CreateLoginProfile ignores ``PasswordResetRequired``. In AWS it "specifies whether the user is required to
  set a new password on next sign-in" (IAM API Reference, CreateLoginProfile), and GetLoginProfile returns it: a
  release that restores console access asks for it, and the tests read it back.
"""
from __future__ import annotations

from contextlib import ExitStack
from unittest import mock

MANAGED_POLICIES_PER_USER = 10


def install(stack: ExitStack) -> None:
    from moto.iam.exceptions import LimitExceededException
    from moto.iam.models import IAMBackend

    original = IAMBackend.attach_user_policy

    def attach_user_policy(self, policy_arn: str, user_name: str) -> None:
        user = self.get_user(user_name)
        if policy_arn not in user.managed_policies and len(user.managed_policies) >= MANAGED_POLICIES_PER_USER:
            raise LimitExceededException(f"Cannot exceed quota for PoliciesPerUser: {MANAGED_POLICIES_PER_USER}")
        return original(self, policy_arn, user_name)

    renamed = IAMBackend.update_user

    def update_user(self, user_name: str, new_path: str | None = None, new_user_name: str | None = None) -> None:
        renamed(self, user_name, new_path, new_user_name)
        if new_user_name:
            for key in self.users[new_user_name].access_keys:
                key.user_name = new_user_name

    from moto.core.responses import ActionResult
    from moto.iam.responses import IamResponse

    created = IamResponse.create_login_profile

    def create_login_profile(self):
        """moto's, then the flag as the request gives it (default false), in the user and in the response."""
        created(self)
        user = self.backend.get_user(self._get_param("UserName"))
        user.password_reset_required = str(self._get_param("PasswordResetRequired")).lower() == "true"
        return ActionResult({"LoginProfile": {"UserName": user.name, "CreateDate": user.create_date,
                                              "PasswordResetRequired": user.password_reset_required}})

    stack.enter_context(mock.patch.object(IamResponse, "create_login_profile", create_login_profile))
    stack.enter_context(mock.patch.object(IAMBackend, "attach_user_policy", attach_user_policy))
    stack.enter_context(mock.patch.object(IAMBackend, "update_user", update_user))
