"""The regional part of a member account, for every region of `regions` other than the responder's
(`IrMemberRegion-<account>-<region>`): what exists once per region. The member stack (`IrMember-<account>`, the
responder's region) holds the account-wide resources - the member roles and the deny-all instance profile (IAM is
global: a second copy would collide on names) - and the responder's region's sharing key.

What is regional, and where it comes from:

- the evidence-sharing KMS key (`alias/ir-evidence-sharing`): here, one per region; the code finds it by alias in
  the incident's region;
- the quarantine and flow-untracking security groups: per VPC, created by the isolation at run time in the
  instance's VPC (found by their `ir:purpose` tag), so nothing to deploy;
- the deny-all instance profile: IAM, global - the member stack's, used in every region.

Its own stack, so that it can be deployed per account and region by `cdk deploy` or as a StackSet instance."""
from __future__ import annotations

from aws_cdk import CfnOutput, Environment, Stack
from constructs import Construct

from stacks.config import Config
from stacks.member_stack import sharing_key


class MemberRegionStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: Config, account: str, region: str) -> None:
        super().__init__(
            scope, id,
            env=Environment(account=account, region=region),
            description=f"GuardDuty auto-responder: evidence-sharing key of workload account {account} in {region} "
                        f"(the member roles are in IrMember-{account}, {config.region})",
        )
        self.sharing_key = sharing_key(self, config=config, account=account, region=region)
        CfnOutput(self, "SharingKeyArn", value=self.sharing_key.key_arn)
