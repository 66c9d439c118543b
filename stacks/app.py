"""The CDK app: the responder, forensics and member stacks, chosen by the context (see stacks.config).

    IrResponder            -> securityAccount
    IrForensics            -> forensicsAccount
    IrMember-<account>     -> every account of memberAccounts
    IrMemberRegion-<account>-<region> -> every account of memberAccounts, in every region of `regions` but `region`
                               (the regional resources: the evidence-sharing key)
    IrFindings-<securityAccount>-<region> -> every region of `regions` but `region`: GuardDuty findings forwarded
                               to the responder's bus
    IrMemberWatch-<account> -> every account of memberAccounts, in us-east-1 (IAM's CloudTrail events arrive there)
    IrSignals-<account>-<region> -> every account of memberAccounts, in us-east-1 and us-west-2 where the responder
                               does not run: exposed-key events (Trusted Advisor, AWS Health) forwarded to it

    IrMemberStackSets      -> the organization's management account or delegated administrator, when the
                               context names an organization: the member stack as a service-managed StackSet

With `layout=single-account` all three go into `securityAccount`. cdk-nag's AwsSolutions checks run on every
synth: an unacknowledged finding fails it.
"""
from __future__ import annotations

import sys
from typing import Any, Mapping

from stacks.catalog import LAMBDA_ROOT, ROOT

for _path in (ROOT, LAMBDA_ROOT):  # the stacks read responder.settings / responder.permissions at synth time
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from aws_cdk import App, Stack, Tags  # noqa: E402

from stacks import names  # noqa: E402
from stacks.config import Config  # noqa: E402
from stacks.forensics_stack import ForensicsStack  # noqa: E402
from stacks.finding_forwarder_stack import FindingForwarderStack  # noqa: E402
from stacks.member_region_stack import MemberRegionStack  # noqa: E402
from stacks.member_stack import MemberStack  # noqa: E402
from stacks.member_stack_set import MemberStackSets  # noqa: E402
from stacks.member_watch_stack import MemberWatchStack  # noqa: E402
from stacks.nag import add_checks  # noqa: E402
from stacks.responder_stack import ResponderStack  # noqa: E402
from stacks.signal_forwarder_stack import SignalForwarderStack  # noqa: E402
from stacks.catalog import signal_forwarders  # noqa: E402

PROJECT_TAG = ("ir:project", "guardduty-auto-responder")
# CDK feature flags the stacks rely on (set here, not only in cdk.json, so every way of building the app agrees).
FEATURE_FLAGS = {
    # S3 server access logs delivered through a bucket policy, not ACLs (both buckets keep ACLs disabled).
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
    # CDK's built-in CloudFormation validation (runs on every synth): its default rules' findings fail the synth.
    "@aws-cdk/core:validateAgainstDefaultRules": True,
}


def build_app(context: Mapping[str, Any] | None = None, *, outdir: str | None = None,
              nag: bool = True) -> tuple[App, dict[str, Stack]]:
    """The app and its stacks by name. Without `context` the CDK CLI's context is used (cdk.json, -c)."""
    app = App(context=dict(context), outdir=outdir) if context is not None else App(outdir=outdir)
    for flag, value in FEATURE_FLAGS.items():
        app.node.set_context(flag, value)
    config = Config.from_context(app.node.try_get_context)
    stacks: dict[str, Stack] = {
        names.RESPONDER_STACK: ResponderStack(app, names.RESPONDER_STACK, config=config),
        names.FORENSICS_STACK: ForensicsStack(app, names.FORENSICS_STACK, config=config),
    }
    for account in config.member_accounts:
        name = names.member_stack(account)
        stacks[name] = MemberStack(app, name, config=config, account=account)
        for region in config.extra_regions:
            regional = names.member_region_stack(account, region)
            stacks[regional] = MemberRegionStack(app, regional, config=config, account=account, region=region)
        watch = names.member_watch_stack(account)
        stacks[watch] = MemberWatchStack(app, watch, config=config, account=account)
    for region in config.extra_regions:
        name = names.finding_forwarder_stack(config.security_account, region)
        stacks[name] = FindingForwarderStack(app, name, config=config, region=region)
    for (account, region), suffixes in signal_forwarders(region=config.region, security_account=config.security_account,
                                                         member_accounts=config.member_accounts).items():
        name = names.signal_forwarder_stack(account, region)
        stacks[name] = SignalForwarderStack(app, name, config=config, account=account, region=region,
                                            suffixes=suffixes)
    if config.organization is not None:  # the member stack in every account of the organization's target OUs
        stacks[names.MEMBER_STACK_SETS] = MemberStackSets(app, names.MEMBER_STACK_SETS, config=config)
    for stack in stacks.values():
        Tags.of(stack).add(*PROJECT_TAG)
    if nag:
        add_checks(app)
    return app, stacks
