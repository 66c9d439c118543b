"""The incident table's own attribute-value codec (responder.aws.dynamodb, no boto3 import) converts exactly as
boto3.dynamodb.types did with the adapter's float and Decimal handling: same wire values, same plain values back,
the same refusals."""
from __future__ import annotations

from decimal import Decimal, Inexact

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from responder.aws.dynamodb import deserialize, serialize

RECORD = {
    "incidentId": "gd-a2c6e5f0b8d94f6c9e1b7a3d5f2c8e41", "status": "in_progress", "attempts": [
        {"execution": "exec-1", "startedAt": "2024-06-02T02:00:01Z", "trigger": "first", "dryRun": False}],
    "severity": 8.0, "score": 0.1, "ratio": 2.5e-7, "big": 1e20, "count": 3, "negative": -42, "zero": 0,
    "huge": 10 ** 37, "none": None, "flag": True, "timelineBytes": 104_857, "nested": {"a": [1, 2.25, "x", {}]},
    "empty": [], "emptyMap": {}, "tuple": (1, "two"), "tags": {"ir-a", "ir-b"}, "numbers": {3, 1, 2},
    "decimal": Decimal("12.5000"), "unicode": "\u00e9\u4e2d\U0001f600", "emptyText": "",
}


def boto3_serialize(item):
    def to_ddb(value):  # what the adapter did before handing values to boto3's serializer
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, float):
            return Decimal(repr(value))
        if isinstance(value, dict):
            return {k: to_ddb(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [to_ddb(v) for v in value]
        return value
    return {k: TypeSerializer().serialize(to_ddb(v)) for k, v in item.items()}


def boto3_deserialize(item):
    def from_ddb(value):
        if isinstance(value, Decimal):
            return int(value) if value == value.to_integral_value() else float(value)
        if isinstance(value, dict):
            return {k: from_ddb(v) for k, v in value.items()}
        if isinstance(value, list):
            return [from_ddb(v) for v in value]
        if isinstance(value, (set, frozenset)):
            return sorted(from_ddb(v) for v in value)
        return value
    return {k: from_ddb(TypeDeserializer().deserialize(v)) for k, v in item.items()}


def _sets_sorted(item):
    return {k: ({kind: sorted(v)} if kind in ("SS", "NS") else {kind: v}) for k, av in item.items()
            for kind, v in av.items()}


def test_the_wire_values_are_boto3_s():
    assert _sets_sorted(serialize(RECORD)) == _sets_sorted(boto3_serialize(RECORD))


def test_the_plain_values_back_are_boto3_s():
    wire = boto3_serialize(RECORD)
    assert deserialize(wire) == boto3_deserialize(wire)
    back = deserialize(serialize(RECORD))
    assert back["severity"] == 8 and isinstance(back["severity"], int) and back["score"] == 0.1
    assert back["tags"] == ["ir-a", "ir-b"] and back["numbers"] == [1, 2, 3] and back["tuple"] == [1, "two"]
    assert deserialize(None) is None


@pytest.mark.parametrize("value, error", [
    (float("nan"), TypeError), (float("inf"), Exception), (10 ** 40 + 1, Inexact), (object(), TypeError),
    ({1, "mixed"}, TypeError)])
def test_what_dynamodb_cannot_hold_is_refused_as_boto3_refused_it(value, error):
    with pytest.raises(error):
        serialize({"v": value})
    with pytest.raises(error):
        boto3_serialize({"v": value})
