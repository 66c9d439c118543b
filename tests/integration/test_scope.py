"""Scope before touching: CloudTrail event history (the local runtime's LookupEvents), the capture into the evidence
bucket, the Athena query, and failures that must not block containment."""
from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.exceptions import ClientError

from responder import scope
from responder.aws.cloudtrail import CloudTrail
from responder.aws.s3 import EvidenceObjects
from responder.errors import AccountAccessError
from responder.triage import normalize
from state_machines import local

REGION, BUCKET = "eu-west-1", "ir-evidence-scope-test"
USER = f"ci-deployer-{uuid.uuid4().hex[:6]}"  # unique: other tests may share this in-memory AWS
NOW = datetime.now(timezone.utc)


@pytest.fixture(scope="module")
def world():
    """An IAM user whose stolen key listed users, created a key and described instances; a role session."""
    with local.aws(region=REGION):
        admin = boto3.session.Session(region_name=REGION)
        iam = admin.client("iam")
        iam.create_user(UserName=USER)
        key = iam.create_access_key(UserName=USER)["AccessKey"]
        stolen = boto3.session.Session(aws_access_key_id=key["AccessKeyId"],
                                       aws_secret_access_key=key["SecretAccessKey"], region_name=REGION)
        stolen.client("iam").list_users()
        stolen.client("iam").create_access_key(UserName=USER)
        stolen.client("ec2").describe_instances()
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                         "Principal": {"AWS": "arn:aws:iam::123456789012:root"}}]}
        role_arn = iam.create_role(RoleName="app-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        creds = stolen.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="attacker")["Credentials"]
        session = boto3.session.Session(aws_access_key_id=creds["AccessKeyId"],
                                        aws_secret_access_key=creds["SecretAccessKey"],
                                        aws_session_token=creds["SessionToken"], region_name=REGION)
        session.client("ec2").describe_volumes()
        s3 = admin.client("s3")
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield {"key": key["AccessKeyId"], "session_key": creds["AccessKeyId"], "role_arn": role_arn, "admin": admin}


def ct(world, region=REGION):
    return world["admin"].client("cloudtrail", region_name=region)


def names(events):
    return [e["EventName"] for e in events]


# -- the local runtime's event history ------------------------------------------------------------------------
def test_event_history_is_per_region_with_global_services_in_us_east_1(world):
    by_key = [{"AttributeKey": "AccessKeyId", "AttributeValue": world["key"]}]
    assert names(ct(world).lookup_events(LookupAttributes=by_key)["Events"]) == ["AssumeRole", "DescribeInstances"]
    assert names(ct(world, "us-east-1").lookup_events(LookupAttributes=by_key)["Events"]) == [
        "CreateAccessKey", "ListUsers"]  # newest first


def test_a_user_is_found_by_name_and_a_session_by_its_session_name(world):
    user = ct(world, "us-east-1").lookup_events(
        LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": USER}])["Events"]
    assert names(user) == ["CreateAccessKey", "ListUsers"]
    record = json.loads(user[0]["CloudTrailEvent"])
    assert record["userIdentity"]["type"] == "IAMUser" and record["userIdentity"]["accessKeyId"] == world["key"]
    session = ct(world).lookup_events(
        LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": "attacker"}])["Events"]
    assert names(session) == ["DescribeVolumes"]
    issuer = json.loads(session[0]["CloudTrailEvent"])["userIdentity"]["sessionContext"]["sessionIssuer"]
    assert issuer["userName"] == "app-role"


def test_assume_role_events_name_the_role(world):
    found = ct(world).lookup_events(
        LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": world["role_arn"]}])["Events"]
    assert names(found) == ["AssumeRole"] and found[0]["Username"] == USER


def test_pages_and_tokens(world):
    by_key = [{"AttributeKey": "AccessKeyId", "AttributeValue": world["key"]}]
    first = ct(world, "us-east-1").lookup_events(LookupAttributes=by_key, MaxResults=1)
    second = ct(world, "us-east-1").lookup_events(LookupAttributes=by_key, MaxResults=1,
                                                  NextToken=first["NextToken"])
    assert names(first["Events"]) == ["CreateAccessKey"] and names(second["Events"]) == ["ListUsers"]
    assert "NextToken" not in second


def test_the_time_window_bounds_the_events(world):
    by_key = [{"AttributeKey": "AccessKeyId", "AttributeValue": world["key"]}]
    old = ct(world).lookup_events(LookupAttributes=by_key, StartTime=NOW - timedelta(days=3),
                                  EndTime=NOW - timedelta(days=2))
    assert old["Events"] == []


@pytest.mark.parametrize("params, code", [
    ({"LookupAttributes": [{"AttributeKey": "Username", "AttributeValue": "a"},
                           {"AttributeKey": "EventName", "AttributeValue": "b"}]}, "InvalidLookupAttributesException"),
    ({"MaxResults": 51}, "InvalidMaxResultsException"),
    ({"StartTime": NOW, "EndTime": NOW - timedelta(hours=1)}, "InvalidTimeRangeException"),
    ({"NextToken": "bm90IGEgdG9rZW4="}, "InvalidNextTokenException"),
])
def test_lookup_validation_errors_are_aws_s(world, params, code):
    with pytest.raises(ClientError) as raised:
        ct(world).lookup_events(**params)
    assert raised.value.response["Error"]["Code"] == code


def test_the_adapter_stops_at_the_page_bound(world, monkeypatch):
    monkeypatch.setattr("responder.aws.cloudtrail.PAGE_SIZE", 1)
    now = datetime.now(timezone.utc)
    got = CloudTrail(ct(world, "us-east-1")).lookup("AccessKeyId", world["key"], start=now - timedelta(hours=1),
                                                    end=now + timedelta(hours=1), max_pages=1)
    assert got["pages"] == 1 and got["truncated"] is True and names(got["events"]) == ["CreateAccessKey"]
    assert isinstance(got["events"][0]["CloudTrailEvent"], dict)  # parsed, not a JSON string


# -- capture ----------------------------------------------------------------------------------------------------
def incident(**changes):
    cutoff = (datetime.now(timezone.utc) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    base = {"incidentId": "gd-scope", "accountId": "123456789012", "region": REGION, "partition": "aws",
            "cutoff": cutoff, "dryRun": False, "identities": [{"type": "IAMUser", "name": USER}]}
    return {**base, **changes}


def capture(world, inc, **overrides):
    args = {"cloudtrail": lambda region: CloudTrail(ct(world, region)),
            "bucket": lambda: EvidenceObjects(world["admin"].client("s3"), BUCKET),
            "role_arn": lambda name: world["role_arn"] if name == "app-role" else None}
    args.update(overrides)
    return scope.capture_all(inc, **args)


def test_a_user_s_activity_is_captured_from_both_regions_with_its_digest(world):
    got = capture(world, incident())
    [found] = got["captures"]
    assert got["status"] == found["status"] == "captured" and found["events"] == 4
    assert found["regions"] == {"eu-west-1": {"events": 2, "pages": 1, "truncated": False},
                                "us-east-1": {"events": 2, "pages": 1, "truncated": False}}
    assert found["key"] == f"incidents/gd-scope/cloudtrail/user-{USER}.json"
    body = world["admin"].client("s3").get_object(Bucket=BUCKET, Key=found["key"])["Body"].read()
    assert found["sha256"] == "sha256:" + hashlib.sha256(body).hexdigest()
    document = json.loads(body)
    assert document["lookup"] == {"AttributeKey": "Username", "AttributeValue": USER}
    assert names(document["events"]) == ["AssumeRole", "DescribeInstances", "CreateAccessKey", "ListUsers"]
    assert [e["api"] for e in got["entries"]] == ["s3:PutObject"] and got["entries"][0]["task"] == "scope"


def test_the_stolen_session_is_captured_by_its_key_and_the_role_by_its_arn(world):
    got = capture(world, incident(identities=[
        {"type": "AssumedRole", "name": "app-role", "accessKeyId": world["session_key"]},
        {"type": "AssumedRole", "name": "app-role"}]))
    by_key, by_arn = got["captures"]
    assert by_key["lookup"]["AttributeKey"] == "AccessKeyId" and by_key["events"] == 1
    assert by_arn["lookup"] == {"AttributeKey": "ResourceName", "AttributeValue": world["role_arn"]}
    assert by_arn["events"] == 1


def test_the_athena_query_is_the_runbook_s_shape_for_the_window():
    span = {"start": "2024-05-30T00:00:00Z", "end": "2024-06-01T00:00:00Z"}
    query = scope.athena_query({"type": "IAMUser", "name": "svc-build"}, {"accountId": "111122223333"}, span)
    assert query == (
        "SELECT eventTime, eventName, sourceIPAddress, userAgent, requestParameters FROM cloudtrail_logs "
        "WHERE useridentity.type = 'IAMUser' AND useridentity.accountid = '111122223333' AND "
        "useridentity.username = 'svc-build' AND eventTime BETWEEN '2024-05-30T00:00:00Z' AND "
        "'2024-06-01T00:00:00Z' ORDER BY eventTime")
    role = scope.athena_query({"type": "AssumedRole", "name": "o'brien"}, {"accountId": "1"}, span)
    assert "sessionissuer.username = 'o''brien'" in role
    assert "useridentity.type = 'Root'" in scope.athena_query({"type": "Root"}, {"accountId": "1"}, span)


def test_an_unreachable_bucket_fails_the_capture_and_nothing_else(world):
    got = capture(world, incident(), bucket=lambda: EvidenceObjects(world["admin"].client("s3"), "no-such-bucket"))
    [found] = got["captures"]
    assert got["status"] == found["status"] == "failed" and found["error"] == "NoSuchBucket"
    assert found["athenaQuery"]  # the query a person runs is still there


def test_an_account_that_cannot_be_reached_fails_the_capture_without_raising(world):
    def unreachable(region):
        raise AccountAccessError("cannot assume the member role")

    got = capture(world, incident(), cloudtrail=unreachable)
    assert got["captures"][0]["status"] == "failed" and got["captures"][0]["error"] == "AccountAccessError"
    assert got["entries"][-1]["status"] == "failed"


def test_a_dry_run_looks_nothing_up_and_writes_nothing_but_plans_the_put(world):
    def never(*args):
        raise AssertionError("a dry run must not look anything up")

    got = capture(world, incident(incidentId="gd-dry", dryRun=True,
                                  identities=[{"type": "IAMUser", "name": USER},
                                              {"type": "AssumedRole", "name": "app-role"}]),
                  cloudtrail=never, role_arn=never)
    assert [c["status"] for c in got["captures"]] == ["planned", "planned"]
    assert [(e["status"], e["api"], e["target"]) for e in got["entries"]] == [
        ("planned", "s3:PutObject", f"s3://{BUCKET}/incidents/gd-dry/cloudtrail/user-{USER}.json"),
        ("planned", "s3:PutObject", f"s3://{BUCKET}/incidents/gd-dry/cloudtrail/role-app-role.json")]
    assert "Body" not in got["entries"][0]["params"]
    listed = world["admin"].client("s3").list_objects_v2(Bucket=BUCKET, Prefix="incidents/gd-dry/")
    assert listed["KeyCount"] == 0


def test_the_time_budget_skips_the_rest_and_says_why(world):
    clock = iter([0.0, 100.0, 100.0, 100.0])
    got = capture(world, incident(), monotonic=lambda: next(clock), budget=20)
    assert got["captures"][0]["status"] == "skipped" and "budget" in got["captures"][0]["detail"]


def test_identities_without_a_lookup_are_skipped():
    got = scope.capture_all(incident(identities=[{"type": "Unknown"}]), cloudtrail=None, bucket=None,
                            role_arn=None)
    assert got["captures"][0]["status"] == "skipped" and got["status"] == "skipped"


# -- window, finding shapes, lookup choice (pure) -------------------------------------------------------------
def test_the_window_reaches_back_to_first_sighting_at_most_seven_days():
    assert scope.window("2024-06-02T02:00:01Z") == {"start": "2024-06-01T02:00:01Z", "end": "2024-06-02T02:00:01Z"}
    assert scope.window("2024-06-02T02:00:01Z", "2024-05-31T23:10:00.000Z")["start"] == "2024-05-31T23:10:00Z"
    assert scope.window("2024-06-02T02:00:01Z", "2024-01-01T00:00:00Z")["start"] == "2024-05-26T02:00:01Z"
    assert scope.window("2024-06-02T02:00:01Z", "not a time")["start"] == "2024-06-01T02:00:01Z"


def test_first_seen_is_read_from_the_incident_of_every_accepted_shape(iam_user_event):
    def pascal(value):
        if isinstance(value, dict):
            return {k[:1].upper() + k[1:]: pascal(v) for k, v in value.items()}
        return [pascal(v) for v in value] if isinstance(value, list) else value

    seen = "2024-06-01T23:10:00.000Z"
    shapes = [iam_user_event, iam_user_event["detail"], pascal(iam_user_event["detail"]),
              {"Findings": [pascal(iam_user_event["detail"])]}]
    assert [scope.first_seen(normalize(raw)) for raw in shapes] == [seen] * 4
    manual = normalize({"manual": {"accountId": "111122223333", "region": "us-east-1", "reason": "r",
                                   "iamUsers": ["u"], "incidentId": "IR-1"}})
    assert scope.first_seen(manual) is None
    iam_user_event["detail"]["service"]["eventFirstSeen"] = "not a time"  # attacker-shaped: the default window
    assert scope.first_seen(normalize(iam_user_event)) is None
    del iam_user_event["detail"]["service"]["eventFirstSeen"]
    assert scope.first_seen(normalize(iam_user_event)) is None


@pytest.mark.parametrize("identity, expected", [
    ({"type": "IAMUser", "name": "u", "accessKeyId": "AKIA1"}, ("AccessKeyId", "AKIA1")),
    ({"type": "IAMUser", "name": "u"}, ("Username", "u")),
    ({"type": "Root"}, ("Username", "root")),
    ({"type": "FederatedUser", "name": "bob"}, ("Username", "bob")),
    ({"type": "AssumedRole", "name": "r"}, None),
    ({"type": "Unknown"}, None),
])
def test_one_lookup_attribute_per_identity(identity, expected):
    assert scope.lookup_for(identity) == expected


def test_global_events_region_per_partition():
    assert scope.lookup_regions({"region": "eu-west-1", "partition": "aws"}) == ["eu-west-1", "us-east-1"]
    assert scope.lookup_regions({"region": "us-east-1", "partition": "aws"}) == ["us-east-1"]
    assert scope.lookup_regions({"region": "us-gov-east-1", "partition": "aws-us-gov"}) == [
        "us-gov-east-1", "us-gov-west-1"]
