"""The runbook's trail queries (responder/trail_query.py): the principal's values reach Athena only as execution
parameters (quoted SQL literals, after AWS's own character checks); an attacker-chosen name never changes the query
text; rows become the records LookupEvents yields."""
from __future__ import annotations

import pytest

from responder import trail_query
from responder.trail_query import UnsafeValue, principal_query

SPAN = {"start": "2024-05-30T00:00:00Z", "end": "2024-06-01T00:00:00Z"}
INCIDENT = {"accountId": "111122223333", "partition": "aws"}
TABLE = {"database": "org_trail", "table": "cloudtrail_logs"}


def test_the_query_text_is_the_named_query_and_the_values_are_parameters():
    got = principal_query({"type": "IAMUser", "name": "svc-build"}, INCIDENT, SPAN, **TABLE)
    saved = {q["name"]: q["query"] for q in trail_query.named_queries(**TABLE)}
    assert got["query"] == saved["ir-responder-scope-iam-user"] == saved[got["name"]]
    assert "svc-build" not in got["query"] and "111122223333" not in got["query"]
    assert got["query"].count("?") == len(got["parameters"]) == 4
    assert got["parameters"] == ["'111122223333'", "'svc-build'", "'2024-05-30T00:00:00Z'", "'2024-06-01T00:00:00Z'"]
    assert 'FROM "org_trail"."cloudtrail_logs"' in got["query"]


@pytest.mark.parametrize("name", ["x' OR '1'='1", "svc'--", "a\\'; DROP TABLE t; --", "bob\u2019s", "x" * 129])
def test_an_attacker_chosen_user_name_never_reaches_the_query(name):
    with pytest.raises(UnsafeValue, match="name"):
        principal_query({"type": "IAMUser", "name": name}, INCIDENT, SPAN, **TABLE)


def test_a_quote_in_a_value_would_stay_inside_its_literal_anyway():
    assert trail_query.literal("x' OR '1'='1") == "'x'' OR ''1''=''1'"


@pytest.mark.parametrize("identity,field", [
    ({"type": "IAMUser", "name": "ok"}, "account"),
    ({"accessKeyId": "AKIA' OR 1=1 --"}, "accessKeyId"),
    ({"type": "FederatedUser", "name": "bob' OR '"}, "arn"),
])
def test_every_value_is_checked(identity, field):
    incident = {"accountId": "1111' OR '1'='1"} if field == "account" else INCIDENT
    with pytest.raises(UnsafeValue, match=field):
        principal_query(identity, incident, SPAN, **TABLE)


def test_a_window_that_is_not_the_fixed_timestamp_format_is_refused():
    with pytest.raises(UnsafeValue, match="start"):
        principal_query({"type": "Root"}, INCIDENT, {"start": "2024' OR '1'='1", "end": SPAN["end"]}, **TABLE)


def test_table_names_are_identifiers_only():
    with pytest.raises(UnsafeValue):
        trail_query.query_text("root", database='org"; DROP', table="t")


def test_each_kind_has_its_query_and_the_date_partition_is_parameterized_too():
    kinds = {"iam_user": {"type": "IAMUser", "name": "u"}, "assumed_role": {"type": "AssumedRole", "name": "r"},
             "root": {"type": "Root"}, "federated_user": {"type": "FederatedUser", "name": "bob"},
             "access_key": {"accessKeyId": "AKIAIOSFODNN7EXAMPLE"}, "principal_id": {"principalId": "AIDAEXAMPLE12345678"}}
    for kind, identity in kinds.items():
        got = principal_query(identity, INCIDENT, SPAN, **TABLE, date_partition="timestamp")
        assert got["kind"] == kind and got["query"].count("?") == len(got["parameters"])
        assert got["parameters"][-2:] == ["'2024/05/30'", "'2024/06/01'"]
    assert principal_query({"type": "Unknown"}, INCIDENT, SPAN, **TABLE) is None


def test_a_row_becomes_the_lookup_events_record():
    row = {"eventid": "e-1", "eventtime": "2024-05-30T10:00:00Z", "eventname": "CreateAccessKey",
           "eventsource": "iam.amazonaws.com", "awsregion": "us-east-1", "readonly": "false",
           "requestparameters": '{"userName":"other"}', "responseelements": None, "identity_type": "IAMUser",
           "identity_arn": "arn:aws:iam::111122223333:user/svc-build", "identity_accountid": "111122223333",
           "identity_accesskeyid": "AKIAIOSFODNN7EXAMPLE", "identity_username": "svc-build"}
    event = trail_query.event_from_row(row)
    assert {k: event[k] for k in ("EventId", "EventName", "EventTime", "EventSource", "Username", "AccessKeyId",
                                  "ReadOnly")} == {
        "EventId": "e-1", "EventName": "CreateAccessKey", "EventTime": "2024-05-30T10:00:00Z",
        "EventSource": "iam.amazonaws.com", "Username": "svc-build", "AccessKeyId": "AKIAIOSFODNN7EXAMPLE",
        "ReadOnly": "false"}
    record = event["CloudTrailEvent"]
    assert record["requestParameters"] == {"userName": "other"} and "responseElements" not in record
    assert record["userIdentity"]["userName"] == "svc-build" and record["awsRegion"] == "us-east-1"
    role = trail_query.event_from_row({"identity_type": "AssumedRole",
                                       "identity_arn": "arn:aws:sts::1:assumed-role/app/i-0abc",
                                       "issuer_arn": "arn:aws:iam::1:role/app", "issuer_username": "app"})
    assert role["Username"] == "i-0abc"
    assert role["CloudTrailEvent"]["userIdentity"]["sessionContext"]["sessionIssuer"]["userName"] == "app"
