"""Scope at scale on CloudTrail Lake (issue 14 item 2): with the organization's event data store named instead of an
Athena table, the identity task runs the principal's statement there (StartQuery, DescribeQuery, GetQueryResults)
and stores the same event records (state_machines/gaps_lake.py answers from the recorded CloudTrail events)."""
from __future__ import annotations

import time

import pytest

from state_machines import gaps_lake, local
from tests.workflow.test_trail_scope import FORENSICS, MEMBER, REGION, attacker, captured
from tests.worlds.deployment import deployment

dep = deployment(member_account=MEMBER, forensics_account=FORENSICS, region=REGION, cloudtrail_lake=True)


def test_the_cloudtrail_lake_path_captures_the_same_events_in_the_same_shape(dep):
    lake = dep
    if True:
        name, key, _, ev = attacker(lake)
        started = time.perf_counter()
        run = local.execute(ev, lake)
        seconds = time.perf_counter() - started
        assert run.status == "SUCCEEDED" and run.output["outcome"] == "contained", run.cause
        _, capture, document = captured(lake, f"gd-{ev['detail']['id']}")
        assert capture["source"] == document["source"] == "lake" and capture["events"] == 2
        assert capture["trail"]["status"] == "captured" and capture["trail"]["parameters"] == []
        statement = document["query"]["statement"]
        assert f"useridentity.username = '{name}'" in statement and lake.environment["IR_TRAIL_EVENT_DATA_STORE"]
        assert gaps_lake.queries()[capture["trail"]["queryExecutionId"]]["statement"] == statement
        assert sorted(e["EventName"] for e in document["events"]) == ["CreateAccessKey", "ListUsers"]
        [created] = [e for e in document["events"] if e["EventName"] == "CreateAccessKey"]
        assert created["Username"] == name and created["AccessKeyId"] == key
        assert created["EventTime"].endswith("Z") and "T" in created["EventTime"]
        assert created["CloudTrailEvent"]["requestParameters"]["userName"].startswith("other-")
        calls = run.api_calls
        assert calls.get("cloudtrail:StartQuery") == 1 and calls.get("cloudtrail:GetQueryResults") == 1
        assert calls.get("cloudtrail:DescribeQuery", 0) >= 2 and "cloudtrail:LookupEvents" not in calls
        assert not [k for k in calls if k.startswith("athena:")]
        lake_calls = {k: v for k, v in calls.items() if k.startswith("cloudtrail:")}
        print(f"\nlake path: {lake_calls}, execution {seconds:.2f} s")


def test_the_lake_statement_admits_only_checked_values():
    from responder.trail_query import UnsafeValue, lake_query

    span = {"start": "2024-05-30T00:00:00Z", "end": "2024-06-01T00:00:00Z"}
    store = "arn:aws:cloudtrail:eu-west-1:123456789012:eventdatastore/EXAMPLE-1"
    with pytest.raises(UnsafeValue, match="name"):
        lake_query({"type": "IAMUser", "name": "x' OR '1'='1"}, {"accountId": MEMBER}, span, event_data_store=store)
    with pytest.raises(UnsafeValue, match="event data store"):
        lake_query({"type": "Root"}, {"accountId": MEMBER}, span, event_data_store="x; DROP")
    got = lake_query({"type": "Root"}, {"accountId": MEMBER}, span, event_data_store=store)
    assert "FROM EXAMPLE-1 WHERE useridentity.type = 'Root'" in got["query"] and "?" not in got["query"]
    assert "BETWEEN '2024-05-30 00:00:00' AND '2024-06-01 00:00:00'" in got["query"]
