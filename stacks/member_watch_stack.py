"""The IAM watch of a member account (us-east-1, where IAM's CloudTrail events reach EventBridge): a detective
control for what IAM cannot prevent by condition. The member role may write inline policies on any user or role a
finding names, and IAM has no condition key for an inline policy's name; these rules report, on a topic of their
own (encrypted, TLS only, the notification e-mail subscribed), every IAM call by the member role's sessions that
writes an inline policy not named like the responder's own (AWSRevokeOlderSessions), or any IAM write the role is
not granted (such an attempt is denied, and still worth a page)."""
from __future__ import annotations

import jsii
from aws_cdk import Aws, Environment, Stack, aws_events as events, aws_iam as iam
from aws_cdk import aws_sns as sns, aws_sns_subscriptions as subscriptions
from constructs import Construct

from stacks import names, policies
from stacks.config import Config
from stacks.constructs.keys import ManagedKey
from stacks.constructs.trigger import event_pattern


@jsii.implements(events.IRuleTarget)
class _Topic:
    """The topic as a rule target without CDK's unconditioned publish grant (the topic policy grants EventBridge
    publishing for the watch rules only, aws:SourceArn)."""

    def __init__(self, topic: sns.ITopic) -> None:
        self._topic = topic

    def bind(self, rule: events.IRule, id: str | None = None) -> events.RuleTargetConfig:  # noqa: A002, ARG002
        return events.RuleTargetConfig(arn=self._topic.topic_arn)


class MemberWatchStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: Config, account: str) -> None:
        super().__init__(
            scope, id,
            env=Environment(account=account, region=policies.IAM_EVENTS_REGION),
            description=f"GuardDuty auto-responder: IAM watch of the member role (workload account {account})",
        )
        partition = Aws.PARTITION
        region = policies.IAM_EVENTS_REGION
        patterns = policies.watch_patterns(partition, account)
        rule_arns = [policies.rule_arn(partition, region, account, names.IAM_WATCH_RULE_PREFIX + suffix)
                     for suffix in patterns]
        key = ManagedKey(
            self, "TopicKey",
            alias=names.IAM_WATCH_KEY_ALIAS,
            description="Encrypts the GuardDuty auto-responder's IAM watch topic",
            policy=policies.topic_key_policy(partition=partition, account=account, service="events.amazonaws.com",
                                             source_arn=f"arn:{partition}:events:{region}:{account}:rule/"
                                                        f"{names.IAM_WATCH_RULE_PREFIX}*"),
        ).key
        self.topic = sns.Topic(
            self, "Topic",
            topic_name=names.IAM_WATCH_TOPIC,
            display_name="GuardDuty auto-responder IAM watch (high priority)",
            master_key=key,
            enforce_ssl=True,
        )
        for statement in policies.watch_topic_policy(topic_arn=self.topic.topic_arn, rule_arns=rule_arns,
                                                     partition=partition)["Statement"][1:]:
            self.topic.add_to_resource_policy(iam.PolicyStatement.from_json(statement))
        if config.notification_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.notification_email))
        self.rules: dict[str, events.Rule] = {}
        for suffix, pattern in patterns.items():
            rule = events.Rule(
                self, f"Rule-{suffix}",
                rule_name=names.IAM_WATCH_RULE_PREFIX + suffix,
                description="IAM write by the responder's member role that the responder never makes",
                event_pattern=event_pattern(pattern),
            )
            rule.add_target(_Topic(self.topic))
            self.rules[suffix] = rule
