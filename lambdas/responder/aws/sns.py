"""SNS adapter: the responder's incident topic (responder account)."""
from __future__ import annotations

from typing import Any

RESPONDER_ACTIONS = ("sns:Publish",)


class Topic:
    def __init__(self, client: Any, arn: str):
        self._c = client
        self.arn = arn

    def publish(self, subject: str, message: str, attributes: dict[str, str]) -> str:
        """Publish one message; returns its MessageId. Attributes are String attributes (for filter policies)."""
        response = self._c.publish(
            TopicArn=self.arn, Subject=subject, Message=message,
            MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items() if v},
        )
        return response["MessageId"]
