"""The role the responder assumes in another account (member or forensics): trusted only by the exact function
roles that need it (aws:PrincipalArn, exact ARNs from `stacks.tasks`), with `sts:ExternalId` against confused
deputies; permissions exactly the given policy document (its explicit denies included)."""
from __future__ import annotations

from typing import Sequence

from aws_cdk import Aws, Duration, Tags, aws_iam as iam
from constructs import Construct

from stacks import policies


class ResponderAccessRole(Construct):
    def __init__(self, scope: Construct, id: str, *, role_name: str, description: str, security_account: str,
                 external_id: str, policy: dict, protected_tag: str, principal_arns: Sequence[str]) -> None:
        super().__init__(scope, id)
        principal = iam.AccountPrincipal(security_account).with_conditions(
            policies.responder_trust_conditions(Aws.PARTITION, security_account, external_id, principal_arns))
        inline = {"permissions": iam.PolicyDocument.from_json(policy)} if policy["Statement"] else None
        self.role = iam.Role(
            self, "Role",
            role_name=role_name,
            description=description,
            assumed_by=principal,
            inline_policies=inline,
            max_session_duration=Duration.hours(1),
        )
        # The protection check never contains a principal tagged so (defence in depth: it also knows the name).
        Tags.of(self.role).add(protected_tag, "true")
