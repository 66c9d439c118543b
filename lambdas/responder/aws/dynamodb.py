"""DynamoDB adapter: the incident table (responder account, key ``incidentId`` (S)).

Plain JSON-ready values in and out: numbers come back as int or float (never Decimal), string sets as sorted
lists. The incident record is the responder's own bookkeeping, not a change to a workload account, so these writes
do not go through the Journal and are made in a dry run too.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any, Iterator

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from responder.errors import IncidentRecordError, error_code

# IAM actions this adapter calls, for the functions' role (see responder.permissions). Scan is the CLI's, which
# runs with a person's credentials, not with a function role.
RESPONDER_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


def _to_ddb(value: Any) -> Any:
    """floats -> Decimal (DynamoDB numbers), recursively; everything else as is."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _to_ddb(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_ddb(v) for v in value]
    return value


def _from_ddb(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_ddb(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_ddb(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(_from_ddb(v) for v in value)
    return value


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _SERIALIZER.serialize(_to_ddb(v)) for k, v in item.items()}


def deserialize(item: dict[str, Any] | None) -> dict[str, Any] | None:
    if item is None:
        return None
    return {k: _from_ddb(_DESERIALIZER.deserialize(v)) for k, v in item.items()}


def conditional_failed(exc: BaseException) -> bool:
    return error_code(exc) == "ConditionalCheckFailedException"


class IncidentTable:
    def __init__(self, client: Any, name: str):
        self._c = client
        self.name = name

    def _key(self, incident_id: str) -> dict[str, Any]:
        return {"incidentId": {"S": incident_id}}

    def create(self, item: dict[str, Any]) -> dict[str, Any] | None:
        """Put `item` unless an item with its key exists. Returns None when created, else the existing item
        (returned by the failed condition itself: no second read)."""
        try:
            self._c.put_item(
                TableName=self.name, Item=serialize(item),
                ConditionExpression="attribute_not_exists(incidentId)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return None
        except ClientError as exc:
            if not conditional_failed(exc):
                raise
            existing = deserialize(exc.response.get("Item"))
            return existing if existing is not None else self.get(item["incidentId"]) or {}

    def get(self, incident_id: str, *, consistent: bool = True) -> dict[str, Any] | None:
        response = self._c.get_item(TableName=self.name, Key=self._key(incident_id), ConsistentRead=consistent)
        return deserialize(response.get("Item"))

    def update(self, incident_id: str, expression: str, values: dict[str, Any], *,
               names: dict[str, str] | None = None, condition: str | None = None) -> bool:
        """One UpdateItem. False when `condition` did not hold (nothing written)."""
        params: dict[str, Any] = {
            "TableName": self.name, "Key": self._key(incident_id), "UpdateExpression": expression,
            "ExpressionAttributeValues": serialize(values),
        }
        if names:
            params["ExpressionAttributeNames"] = names
        if condition:
            params["ConditionExpression"] = condition
        try:
            self._c.update_item(**params)
            return True
        except ClientError as exc:
            if condition and conditional_failed(exc):
                return False
            raise

    def scan(self, *, status: str | None = None, page_size: int = 100, max_items: int = 1000) -> Iterator[dict]:
        """Every item (bounded by `max_items`), optionally only those with this status. For the CLI's `list`."""
        params: dict[str, Any] = {"TableName": self.name, "Limit": page_size}
        if status:
            params.update(FilterExpression="#s = :s", ExpressionAttributeNames={"#s": "status"},
                          ExpressionAttributeValues={":s": {"S": status}})
        seen = 0
        for page in self._c.get_paginator("scan").paginate(**params):
            for raw in page.get("Items", []):
                yield deserialize(raw)
                seen += 1
                if seen >= max_items:
                    return


def incident_table(clients: Any, name: str) -> IncidentTable:
    """The deployment's incident table `name` through the function's own role (`clients.own`, responder.aws.clients);
    IncidentRecordError when the deployment names none."""
    if not name:
        raise IncidentRecordError("IR_INCIDENT_TABLE is not configured")
    return IncidentTable(clients.own("dynamodb"), name)
