"""The forwarding rules of a member account in a region where exposed-key events are published (us-east-1 for
Trusted Advisor and AWS Health's global events, us-west-2 as Health's backup Region: `stacks.catalog.SIGNAL_REGIONS`)
when the responder does not run there: each rule matches one exposed-key pattern (`stacks.catalog.SIGNAL_PATTERNS`)
and puts the event, unchanged, on the responder's default event bus (security account, responder region), where the
responder's own rule of the same pattern starts the containment state machine. EventBridge needs a role for an
event bus target in another account or Region: the role may put events on that bus only, and trusts EventBridge for
these rules only (`aws:SourceArn`). The responder's bus accepts these roles only, for AWS's own sources only
(`stacks.policies.signal_bus_statement`)."""
from __future__ import annotations

import jsii
from aws_cdk import Aws, Environment, Stack, Tags, aws_events as events, aws_iam as iam
from constructs import Construct

from stacks import names, policies
from stacks.catalog import SIGNAL_PATTERNS
from stacks.config import Config
from stacks.constructs.trigger import event_pattern


@jsii.implements(events.IRuleTarget)
class _Bus:
    """The responder's bus as a rule target with this stack's role, without CDK's own grant (the role's policy is
    `stacks.policies.forwarder_policy`, the same document the local runtime uses)."""

    def __init__(self, bus_arn: str, role: iam.IRole) -> None:
        self._arn, self._role = bus_arn, role

    def bind(self, rule: events.IRule, id: str | None = None) -> events.RuleTargetConfig:  # noqa: A002, ARG002
        return events.RuleTargetConfig(arn=self._arn, role=self._role)


class SignalForwarderStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: Config, account: str, region: str,
                 suffixes: tuple[str, ...]) -> None:
        super().__init__(
            scope, id,
            env=Environment(account=account, region=region),
            description=f"GuardDuty auto-responder: exposed-key events of account {account} in {region} forwarded "
                        f"to the responder ({config.security_account}, {config.region})",
        )
        partition = Aws.PARTITION
        bus_arn = policies.event_bus_arn(partition, config.region, config.security_account)
        rule_arns = [policies.rule_arn(partition, region, account, names.FORWARD_RULE_PREFIX + s) for s in suffixes]
        trust = policies.service_trust("events.amazonaws.com", source_account=account, source_arn=rule_arns)
        self.role = iam.Role(
            self, "Role",
            role_name=names.forwarder_role_name(region),
            description="Lets the exposed-key forwarding rules put their events on the responder's event bus",
            assumed_by=iam.ServicePrincipal("events.amazonaws.com").with_conditions(
                trust["Statement"][0]["Condition"]),
            inline_policies={"forward": iam.PolicyDocument.from_json(policies.forwarder_policy(bus_arn))},
        )
        Tags.of(self.role).add(config.protected_tag, "true")
        self.rules: dict[str, events.Rule] = {}
        for suffix in suffixes:
            rule = events.Rule(
                self, f"Forward-{suffix}",
                rule_name=names.FORWARD_RULE_PREFIX + suffix,
                description="Exposed-key events go to the GuardDuty auto-responder's event bus",
                event_pattern=event_pattern(SIGNAL_PATTERNS[suffix]),
            )
            rule.add_target(_Bus(bus_arn, self.role))
            self.rules[suffix] = rule
