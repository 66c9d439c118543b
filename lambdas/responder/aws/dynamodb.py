"""DynamoDB adapter: the incident table (responder account, key ``incidentId`` (S)).

Plain JSON-ready values in and out: numbers come back as int or float (never Decimal), string sets as sorted
lists. The incident record is the responder's own bookkeeping, not a change to a workload account, so these writes
do not go through the Journal and are made in a dry run too.
"""
from __future__ import annotations

from collections.abc import Mapping, Set
from decimal import Clamped, Context, Decimal, Inexact, Overflow, Rounded, Underflow
from typing import Any, Iterator

from botocore.exceptions import ClientError

from responder.errors import IncidentRecordError, error_code

# IAM actions this adapter calls, for the functions' role (see responder.permissions). Scan is the CLI's, which
# runs with a person's credentials, not with a function role.
RESPONDER_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")

# DynamoDB's attribute values, written here rather than with boto3.dynamodb.types (importing boto3 costs Triage and
# Finalize ~15 ms of cold start); the same conversions, the same number context (38 digits, exponent -128..126: a
# number DynamoDB cannot hold exactly raises instead of being rounded). tests/unit/test_dynamodb_codec.py compares
# both on the record's shapes.
_NUMBERS = Context(Emin=-128, Emax=126, prec=38, traps=[Clamped, Overflow, Inexact, Rounded, Underflow])


def _number(value: Any) -> str:
    """int, Decimal or float (a float by its shortest repr, as DynamoDB numbers are decimal)."""
    number = str(_NUMBERS.create_decimal(Decimal(repr(value)) if isinstance(value, float) else value))
    if number in ("Infinity", "NaN"):
        raise TypeError("Infinity and NaN not supported")
    return number


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _attribute(value: Any) -> dict[str, Any]:
    """A JSON-ready value as a DynamoDB attribute value."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if _is_number(value):
        return {"N": _number(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (bytes, bytearray)):
        return {"B": value}
    if isinstance(value, Set):
        if all(_is_number(v) for v in value):
            return {"NS": [_number(v) for v in value]}
        if all(isinstance(v, str) for v in value):
            return {"SS": list(value)}
        if all(isinstance(v, (bytes, bytearray)) for v in value):
            return {"BS": list(value)}
    elif isinstance(value, Mapping):
        return {"M": {k: _attribute(v) for k, v in value.items()}}
    elif isinstance(value, (list, tuple)):
        return {"L": [_attribute(v) for v in value]}
    raise TypeError(f'Unsupported type "{type(value)}" for value "{value}"')


def _plain_number(text: str) -> int | float:
    number = _NUMBERS.create_decimal(text)
    return int(number) if number == number.to_integral_value() else float(number)


def _value(attribute: dict[str, Any]) -> Any:
    """A DynamoDB attribute value as plain JSON-ready data: numbers as int or float, sets as sorted lists."""
    if not attribute:
        raise TypeError("Value must be a nonempty dictionary whose key is a valid dynamodb type.")
    kind, value = next(iter(attribute.items()))
    if kind == "S" or kind == "BOOL" or kind == "B":
        return value
    if kind == "N":
        return _plain_number(value)
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: _value(v) for k, v in value.items()}
    if kind == "L":
        return [_value(v) for v in value]
    if kind == "SS" or kind == "BS":
        return sorted(set(value))
    if kind == "NS":
        return sorted({_plain_number(v) for v in value})
    raise TypeError(f"Dynamodb type {kind} is not supported")


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _attribute(v) for k, v in item.items()}


def deserialize(item: dict[str, Any] | None) -> dict[str, Any] | None:
    if item is None:
        return None
    return {k: _value(v) for k, v in item.items()}


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
