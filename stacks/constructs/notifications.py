"""The notifications topic (incident summaries, alarms): encrypted with its own KMS key (CloudWatch alarms may
publish to it), TLS only, an optional e-mail subscription."""
from __future__ import annotations

from aws_cdk import Aws, aws_sns as sns, aws_sns_subscriptions as subscriptions
from constructs import Construct

from stacks import names, policies
from stacks.constructs.keys import ManagedKey


class Notifications(Construct):
    def __init__(self, scope: Construct, id: str, *, account: str, email: str = "") -> None:
        super().__init__(scope, id)
        self.key = ManagedKey(
            self, "TopicKey",
            alias=names.TOPIC_KEY_ALIAS,
            description="Encrypts the GuardDuty auto-responder's notifications topic",
            policy=policies.topic_key_policy(partition=Aws.PARTITION, account=account),
        ).key
        self.topic = sns.Topic(
            self, "Topic",
            topic_name=names.TOPIC_NAME,
            display_name="GuardDuty auto-responder",
            master_key=self.key,
            enforce_ssl=True,
        )
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
