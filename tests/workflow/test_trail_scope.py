"""Scope at scale (issue 14 item 2), through the shipped state machine: with the organization trail's Athena table
named, the identity task starts the principal's saved query, collects its rows after containment and stores them
with the incident's evidence in the shape LookupEvents yields; without a table, or when the query fails or does not
finish in time, event history is the source. The in-memory engine answers from the recorded CloudTrail events
(state_machines/gaps_athena.py)."""
from __future__ import annotations

import hashlib
import json
import time
import uuid

import boto3
import pytest

from state_machines import gaps_athena, local
from tests.worlds.deployment import deployed, deployment
from tests.worlds.operations import evidence_object, record
from tests.worlds.workflow import access_key_event

MEMBER, FORENSICS, REGION = "444455556666", "999988887777", "eu-west-1"
TRAIL = {"athena_database": "org_trail", "athena_table": "cloudtrail_logs", "athena_workgroup": "ir-scope"}


dep = deployment(member_account=MEMBER, forensics_account=FORENSICS, region=REGION, **TRAIL)


def attacker(dep):
    """A user whose key was stolen; with it the attacker lists users, creates a key for another user and reads a
    policy. A bystander's own call is in the trail too (never in the principal's capture)."""
    iam = dep.client("iam")
    name, other = f"victim-{uuid.uuid4().hex[:8]}", f"other-{uuid.uuid4().hex[:8]}"
    for user in (name, other):
        iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    stolen = boto3.client("iam", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                          region_name=REGION)
    stolen.list_users()
    minted = stolen.create_access_key(UserName=other)["AccessKey"]
    bystander = iam.create_access_key(UserName=other)["AccessKey"]
    boto3.client("iam", aws_access_key_id=bystander["AccessKeyId"], aws_secret_access_key=bystander["SecretAccessKey"],
                 region_name=REGION).list_roles()
    return name, key["AccessKeyId"], minted["AccessKeyId"], access_key_event(
        account=MEMBER, region=REGION, user_type="IAMUser", name=name, key=key["AccessKeyId"])


def captured(dep, incident_id):
    item = record(dep, incident_id)
    [capture] = item["scope"]
    body = evidence_object(dep, capture["key"], capture.get("versionId"))
    assert capture["sha256"] == "sha256:" + hashlib.sha256(body).hexdigest()
    return item, capture, json.loads(body)


def test_the_athena_path_captures_the_principals_events_from_the_trail_in_the_lookup_events_shape(dep):
    name, key, minted, ev = attacker(dep)
    started = time.perf_counter()
    run = local.execute(ev, dep)
    seconds = time.perf_counter() - started
    assert run.status == "SUCCEEDED", run.cause
    assert run.output["outcome"] == "contained"
    incident_id = f"gd-{ev['detail']['id']}"
    item, capture, document = captured(dep, incident_id)
    assert capture["status"] == "captured" and capture["source"] == "athena" and capture["events"] == 2
    assert capture["trail"]["status"] == "captured" and capture["trail"]["namedQuery"] == "ir-responder-scope-iam-user"
    assert capture["trail"]["parameters"][:2] == [f"'{MEMBER}'", f"'{name}'"]
    assert document["source"] == "athena" and document["query"]["workgroup"] == "ir-scope"
    assert sorted(e["EventName"] for e in document["events"]) == ["CreateAccessKey", "ListUsers"]
    times = [e["EventTime"] for e in document["events"]]
    assert times == sorted(times, reverse=True)  # newest first, as event history
    [created] = [e for e in document["events"] if e["EventName"] == "CreateAccessKey"]
    assert created["Username"] == name and created["AccessKeyId"] == key and created["EventSource"] == "iam.amazonaws.com"
    trail_event = created["CloudTrailEvent"]
    assert trail_event["requestParameters"] == {"userName": trail_event["requestParameters"]["userName"]}
    assert trail_event["userIdentity"]["userName"] == name
    assert trail_event["awsRegion"] == "us-east-1"  # IAM's events are recorded in the global-events Region

    # the same events, in the same shape, as event history gives them (what another task reads either way)
    from responder.aws.cloudtrail import CloudTrail
    from responder.scope import _parse

    history = CloudTrail(dep.session().client("cloudtrail", region_name="us-east-1")).lookup(
        "Username", name, start=_parse(document["window"]["start"]), end=_parse(document["window"]["end"]),
        max_pages=5)["events"]
    assert sorted(e["EventId"] for e in history) == sorted(e["EventId"] for e in document["events"])
    theirs_by_id = {e["EventId"]: e for e in history}
    for mine in document["events"]:
        theirs = theirs_by_id[mine["EventId"]]
        assert set(theirs) - set(mine) <= {"Resources"}
        assert mine["EventTime"] == theirs["EventTime"][:19] + "Z"  # CloudTrail's records are to the second
        assert {k: mine[k] for k in ("EventName", "EventSource", "Username", "AccessKeyId", "ReadOnly")} == {
            k: theirs[k] for k in ("EventName", "EventSource", "Username", "AccessKeyId", "ReadOnly")}
        for field in ("eventName", "eventSource", "awsRegion", "requestParameters", "userIdentity", "eventID"):
            assert mine["CloudTrailEvent"].get(field) == theirs["CloudTrailEvent"].get(field), field

    # the query ran for real: one start, polled, results read; event history not asked; contained meanwhile
    calls = run.api_calls
    assert calls.get("athena:StartQueryExecution") == 1 and calls.get("athena:GetQueryResults") == 1
    assert calls.get("athena:GetQueryExecution", 0) >= 2 and "cloudtrail:LookupEvents" not in calls
    apis = [c["api"] for c in run.aws_calls]
    assert apis.index("athena:StartQueryExecution") < apis.index("iam:AttachUserPolicy") < apis.index(
        "athena:GetQueryResults")
    iam = dep.client("iam")
    assert [p["PolicyName"] for p in iam.list_attached_user_policies(UserName=name)["AttachedPolicies"]] == [
        "AWSCompromisedKeyQuarantineV2"]
    athena_calls = {k: v for k, v in calls.items() if k.startswith(("athena:", "cloudtrail:"))}
    print(f"\nathena path: {athena_calls}, execution {seconds:.2f} s")

    # the query that ran is the named query the stack saved, character for character
    athena = local.session(None, REGION).client("athena")
    saved = {q["Name"]: q["QueryString"] for q in (
        athena.get_named_query(NamedQueryId=i)["NamedQuery"]
        for i in athena.list_named_queries(WorkGroup="ir-scope")["NamedQueryIds"])}
    execution = athena.get_query_execution(QueryExecutionId=capture["trail"]["queryExecutionId"])["QueryExecution"]
    assert execution["Query"] == saved["ir-responder-scope-iam-user"]
    assert {"ir-responder-console-logins", "ir-responder-create-access-key"} <= set(saved)

    # a second run of the same finding changes nothing and starts no second query
    again = local.execute(ev, dep)
    assert again.status == "SUCCEEDED"
    assert "athena:StartQueryExecution" not in again.api_calls


def test_a_failed_query_falls_back_to_event_history_and_never_blocks_containment(dep):
    name, _, _, ev = attacker(dep)
    gaps_athena.fail_next("HIVE_CURSOR_ERROR: the trail bucket denied the read")
    run = local.execute(ev, dep)
    assert run.status == "SUCCEEDED" and run.output["outcome"] == "contained"
    _, capture, document = captured(dep, f"gd-{ev['detail']['id']}")
    assert capture["trail"]["status"] == "failed" and "HIVE_CURSOR_ERROR" in capture["trail"]["reason"]
    assert capture["source"] == document["source"] == "lookup_events" and capture["events"] == 2
    assert run.api_calls.get("cloudtrail:LookupEvents")
    assert dep.client("iam").list_attached_user_policies(UserName=name)["AttachedPolicies"]


def test_a_query_that_does_not_finish_in_time_is_stopped_and_event_history_used(dep, monkeypatch):
    from responder import scope

    name, _, _, ev = attacker(dep)
    monkeypatch.setattr(scope, "TRAIL_SECONDS", 1.0)
    gaps_athena.hold(10**6)
    try:
        run = local.execute(ev, dep)
    finally:
        gaps_athena.hold(0)
    assert run.status == "SUCCEEDED" and run.output["outcome"] == "contained"
    _, capture, _ = captured(dep, f"gd-{ev['detail']['id']}")
    assert capture["trail"]["state"] == "TIMED_OUT" and capture["trail"]["status"] == "timed_out"
    assert capture["source"] == "lookup_events" and capture["events"] == 2
    assert run.api_calls.get("athena:StopQueryExecution") == 1
    assert gaps_athena.runs()[capture["trail"]["queryExecutionId"]]["state"] == "CANCELLED"


def test_without_a_trail_table_event_history_stays_the_source():
    with deployed(member_account=MEMBER, forensics_account=FORENSICS, region=REGION) as plain:
        name, _, _, ev = attacker(plain)
        started = time.perf_counter()
        run = local.execute(ev, plain)
        seconds = time.perf_counter() - started
        assert run.status == "SUCCEEDED"
        _, capture, document = captured(plain, f"gd-{ev['detail']['id']}")
        assert capture["source"] == document["source"] == "lookup_events" and "trail" not in capture
        assert not [k for k in run.api_calls if k.startswith("athena:")]
        lookups = {k: v for k, v in run.api_calls.items() if k.startswith(("athena:", "cloudtrail:"))}
        print(f"\nlookup path: {lookups}, execution {seconds:.2f} s")


def test_a_trail_deployment_needs_all_three_names():
    with local.aws(region=REGION):
        with pytest.raises(ValueError, match="athena_workgroup"):
            local.deploy(region=REGION, athena_database="org_trail", athena_table="cloudtrail_logs")
        with pytest.raises(ValueError, match="athena_table"):
            local.deploy(region=REGION, athena_database="org_trail", athena_table='t"; DROP', athena_workgroup="w")


def _run(athena, query, parameters):
    execution = athena.start_query_execution(QueryString=query, WorkGroup="ir-scope", ExecutionParameters=parameters,
                                             QueryExecutionContext={"Database": "org_trail"})["QueryExecutionId"]
    for _ in range(5):
        state = athena.get_query_execution(QueryExecutionId=execution)["QueryExecution"]["Status"]
        if state["State"] in ("SUCCEEDED", "FAILED"):
            break
    rows = athena.get_query_results(QueryExecutionId=execution)["ResultSet"]["Rows"] if (
        state["State"] == "SUCCEEDED") else None
    return state["State"], rows


def test_an_attacker_chosen_name_with_a_quote_never_changes_the_query(dep):
    from responder import scope
    from responder.aws.athena import Athena
    from responder.trail_query import named_queries

    name, _, _, _ = attacker(dep)
    athena = local.session(None, REGION).client("athena")
    [query] = [q["query"] for q in named_queries(database="org_trail", table="cloudtrail_logs")
               if q["name"] == "ir-responder-scope-iam-user"]
    window = ["'2000-01-01T00:00:00Z'", "'2999-01-01T00:00:00Z'"]
    state, rows = _run(athena, query, [f"'{MEMBER}'", f"'{name}'", *window])
    assert state == "SUCCEEDED" and len(rows) == 1 + 2  # labels, then the victim's two events
    # the classic injection, quoted as the responder would quote it: one value, matching no user
    state, rows = _run(athena, query, [f"'{MEMBER}'", "'x'' OR ''1''=''1'", *window])
    assert state == "SUCCEEDED" and len(rows) == 1
    # and unquoted it is no literal at all: the engine refuses the query rather than widening it
    assert _run(athena, query, [f"'{MEMBER}'", "'x' OR '1'='1'", *window])[0] == "FAILED"

    # the capture refuses such a name before any query, and falls back to event history
    calls = []
    engine = Athena(athena, workgroup="ir-scope", database="org_trail")
    engine.start = lambda *a, **k: calls.append(a)  # type: ignore[method-assign]
    trail = scope.Trail(database="org_trail", table="cloudtrail_logs", workgroup="ir-scope", engine=lambda: engine)

    class History:
        def lookup(self, *args, **kwargs):
            return {"events": [], "pages": 1, "truncated": False}

    class Bucket:
        def put_evidence(self, journal, key, body):
            return {"key": key, "sha256": "sha256:x"}

    incident = {"incidentId": "IR-quote", "accountId": MEMBER, "region": REGION, "partition": "aws",
                "cutoff": "2030-01-01T00:00:00Z", "identities": [{"type": "IAMUser", "name": "x' OR '1'='1"}]}
    got = scope.capture_all(incident, cloudtrail=lambda r: History(), bucket=lambda: Bucket(), role_arn=lambda n: None,
                            trail=trail)
    [capture] = got["captures"]
    assert calls == [] and capture["trail"]["status"] == "refused" and capture["source"] == "lookup_events"

