"""The member stack for a whole organization: service-managed StackSets (stack `IrMemberStackSets`, README "Deploy to
a whole organization").

Deployed with `cdk deploy` in the organization's management account (CallAs SELF) or in a CloudFormation delegated
administrator account (CallAs DELEGATED_ADMIN). Each StackSet holds one member template synthesized standalone
(`member_template`): no assets, no nested stacks, no CDK bootstrap parameter or rule (BootstraplessSynthesizer), no
CDK metadata, AWS::AccountId where the member account's id goes - a template any account of the organization can
run. `add_member_stack_set` takes a template and its targets, so that a second (regional) member template can be
added as a StackSet of its own.

The member StackSet deploys in `region` only: it holds IAM roles, whose names are account-wide.
"""
from __future__ import annotations

import json
import tempfile
from typing import Sequence

from aws_cdk import App, BootstraplessSynthesizer, Environment, Stack, aws_cloudformation as cfn
from constructs import Construct

from stacks.config import Config, Organization

MEMBER_STACK_SET_NAME = "ir-responder-member"
TEMPLATE_BODY_LIMIT = 51_200  # bytes: CloudFormation's TemplateBody limit (larger needs TemplateURL, an S3 asset)
# Capabilities the member template needs: it creates named IAM roles and an instance profile.
CAPABILITIES = ("CAPABILITY_NAMED_IAM",)


class TemplateTooLarge(ValueError):
    pass


def member_template(config: Config, *, nag: bool = True) -> dict:
    """The member stack (stacks.member_stack) for every account of the organization, as a template dict."""
    from stacks.app import FEATURE_FLAGS, PROJECT_TAG
    from stacks.member_stack import MemberStack
    from stacks.nag import add_checks

    from aws_cdk import Tags

    with tempfile.TemporaryDirectory() as outdir:
        # post_cli_context: the CLI's own context (version reporting, path metadata) must not add anything here
        app = App(outdir=outdir, analytics_reporting=False, post_cli_context={
            **FEATURE_FLAGS, "aws:cdk:version-reporting": False, "aws:cdk:enable-path-metadata": False})
        stack = MemberStack(app, "IrMember", config=config, account=None, synthesizer=BootstraplessSynthesizer())
        Tags.of(stack).add(*PROJECT_TAG)
        if nag:
            add_checks(app)  # the member template passes cdk-nag like every stack of the app
        return app.synth().get_stack_by_name("IrMember").template


def template_body(template: dict) -> str:
    body = json.dumps(template, separators=(",", ":"), sort_keys=True)
    if len(body.encode()) > TEMPLATE_BODY_LIMIT:
        raise TemplateTooLarge(f"the member template has {len(body.encode())} bytes; TemplateBody takes at most "
                               f"{TEMPLATE_BODY_LIMIT}")
    return body


class MemberStackSets(Stack):
    def __init__(self, scope: Construct, id: str, *, config: Config, template: dict | None = None) -> None:
        organization = config.organization
        assert organization is not None, "MemberStackSets needs the context key organization"
        super().__init__(
            scope, id,
            env=Environment(account=organization.administrator_account, region=config.region),
            description="GuardDuty auto-responder: the member stack in every account of the organization's target "
                        "OUs (service-managed StackSet)",
        )
        self.member = add_member_stack_set(
            self, "Member", organization=organization, name=MEMBER_STACK_SET_NAME,
            description="GuardDuty auto-responder member role, sharing key and deny-all profile",
            template=template if template is not None else member_template(config), regions=[config.region])


def add_member_stack_set(scope: Construct, id: str, *, organization: Organization, name: str, description: str,
                         template: dict, regions: Sequence[str]) -> cfn.CfnStackSet:
    """A service-managed StackSet of `template` in `regions` of every account of the organization's target OUs but
    the excluded ones (AccountFilterType DIFFERENCE); accounts that join a target OU later get it automatically."""
    return cfn.CfnStackSet(
        scope, id,
        stack_set_name=name,
        description=description,
        permission_model="SERVICE_MANAGED",
        call_as=organization.call_as,
        auto_deployment=cfn.CfnStackSet.AutoDeploymentProperty(
            enabled=True, retain_stacks_on_account_removal=organization.retain_stacks_on_account_removal),
        managed_execution={"Active": True},
        capabilities=list(CAPABILITIES),
        operation_preferences=cfn.CfnStackSet.OperationPreferencesProperty(
            failure_tolerance_percentage=organization.failure_tolerance_percentage,
            max_concurrent_percentage=organization.max_concurrent_percentage,
            region_concurrency_type="PARALLEL"),
        stack_instances_group=[cfn.CfnStackSet.StackInstancesProperty(
            regions=list(regions),
            deployment_targets=cfn.CfnStackSet.DeploymentTargetsProperty(
                organizational_unit_ids=list(organization.organizational_unit_ids),
                **({"accounts": list(organization.exclude_accounts), "account_filter_type": "DIFFERENCE"}
                   if organization.exclude_accounts else {})))],
        template_body=template_body(template),
    )
