"""The GuardDuty findings of one region, forwarded to the responder (`IrFindings-<security account>-<region>`, for
every region of `regions` other than the responder's). GuardDuty publishes a finding to EventBridge in the region
it was found in, in the member account and in the GuardDuty administrator account (the security account, delegated
administrator in every region): this stack's rule, in the security account, matches the responder's own pattern
(`stacks.catalog.EVENT_PATTERN`: GuardDuty findings of severity 4 and above) and puts each event, unchanged - its
`region` and `detail.region` still the finding's - on the responder's default event bus (same account, the
responder's region), where the responder's rule starts the containment state machine.

EventBridge needs a role for an event bus target in another Region: the role may put events on that bus only and
trusts EventBridge for this rule only (`aws:SourceArn`). The bus is the same account's, so it needs no resource
policy. Same pattern as `stacks.signal_forwarder_stack`."""
from __future__ import annotations

from aws_cdk import Aws, Environment, Stack, Tags, aws_events as events, aws_iam as iam
from constructs import Construct

from stacks import names, policies
from stacks.catalog import EVENT_PATTERN
from stacks.config import Config
from stacks.constructs.trigger import event_pattern
from stacks.signal_forwarder_stack import _Bus


class FindingForwarderStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: Config, region: str) -> None:
        account = config.security_account
        super().__init__(
            scope, id,
            env=Environment(account=account, region=region),
            description=f"GuardDuty auto-responder: GuardDuty findings of {region} forwarded to the responder "
                        f"({account}, {config.region})",
        )
        partition = Aws.PARTITION
        bus_arn = policies.event_bus_arn(partition, config.region, account)
        trust = policies.service_trust("events.amazonaws.com", source_account=account,
                                       source_arn=[policies.rule_arn(partition, region, account,
                                                                     names.FINDINGS_FORWARD_RULE)])
        self.role = iam.Role(
            self, "Role",
            role_name=names.finding_forwarder_role_name(region),
            description=f"Lets the GuardDuty findings rule of {region} put its events on the responder's event bus",
            assumed_by=iam.ServicePrincipal("events.amazonaws.com").with_conditions(
                trust["Statement"][0]["Condition"]),
            inline_policies={"forward": iam.PolicyDocument.from_json(policies.forwarder_policy(bus_arn))},
        )
        Tags.of(self.role).add(config.protected_tag, "true")
        self.rule = events.Rule(
            self, "Forward",
            rule_name=names.FINDINGS_FORWARD_RULE,
            description=f"GuardDuty findings of severity 4 and above in {region} go to the GuardDuty "
                        f"auto-responder's event bus in {config.region}",
            event_pattern=event_pattern(EVENT_PATTERN),
        )
        self.rule.add_target(_Bus(bus_arn, self.role))
