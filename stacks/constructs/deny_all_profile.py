"""The instance profile an isolated instance gets: its role denies every action, so stolen instance credentials
are worthless from the moment of isolation."""
from __future__ import annotations

from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks import names, policies


class DenyAllInstanceProfile(Construct):
    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        self.role = iam.Role(
            self, "Role",
            role_name=names.DENY_ALL_ROLE_NAME,
            description="Role of the quarantine instance profile: denies everything",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            inline_policies={"deny-all": iam.PolicyDocument.from_json(policies.DENY_ALL_POLICY)},
        )
        self.profile = iam.InstanceProfile(
            self, "Profile", instance_profile_name=names.DENY_ALL_PROFILE, role=self.role)
