"""The incident record on DynamoDB (moto): claim with a conditional write, duplicates, take-over races, live
appends, an idempotent finish, and the adapters for the manifest bucket and the topic."""
from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timezone

import boto3
import pytest
from moto import mock_aws

from responder import records
from responder.aws.dynamodb import IncidentTable, deserialize, serialize
from responder.aws.s3 import EvidenceObjects
from responder.aws.sns import Topic
from responder.aws.stepfunctions import Executions
from responder.errors import TransientAwsError

REGION = "eu-west-1"
TABLE = "ir-responder-incidents"
NOW = datetime(2024, 6, 2, 2, 0, 5, tzinfo=timezone.utc)
EXEC = "arn:aws:states:eu-west-1:123456789012:execution:ir-responder-containment:"


@pytest.fixture(scope="module")
def aws():
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        ddb.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "incidentId", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "incidentId", "KeyType": "HASH"}])
        yield ddb


@pytest.fixture
def table(aws):
    return IncidentTable(aws, TABLE)


_counter = iter(range(10_000))


def incident(**changes):
    n = next(_counter)
    base = {"incidentId": f"gd-{n:04d}", "origin": "guardduty", "accountId": "444455556666", "region": REGION,
            "partition": "aws", "disposition": "respond", "dryRun": False, "severity": 5.3, "count": 1,
            "cutoff": "2024-06-02T02:00:01Z", "identities": [{"type": "IAMUser", "name": "u"}], "instances": []}
    return {**base, **changes}


def running(_arn):
    return "RUNNING"


def test_values_round_trip_without_decimals():
    item = {"incidentId": "x", "severity": 5.3, "count": 2, "nested": [{"f": 0.1, "b": True, "n": None}],
            "finalized": {"a", "b"}}
    assert deserialize(serialize(item)) == {**item, "finalized": ["a", "b"]}


def test_the_first_claim_creates_the_record_in_progress(table):
    inc = incident()
    got = records.claim(table, inc, execution_id=EXEC + "one", execution_status=running, now=NOW)
    assert got == {"cutoff": inc["cutoff"], "record": {"trigger": "first", "attempt": 1}}
    item = table.get(inc["incidentId"])
    assert item["status"] == "in_progress" and item["executionId"] == EXEC + "one"
    assert item["severity"] == 5.3 and item["attempts"][0]["trigger"] == "first"


def test_a_second_event_while_running_is_a_duplicate_and_is_counted(table):
    inc = incident()
    records.claim(table, inc, execution_id=EXEC + "one", execution_status=running, now=NOW)
    got = records.claim(table, dict(inc, count=2, cutoff="2024-06-02T02:15:00Z"), execution_id=EXEC + "two",
                        execution_status=running, now=NOW)
    assert got["disposition"] == "duplicate" and got["cutoff"] == "2024-06-02T02:00:01Z"
    assert got["duplicateOf"]["executionId"] == EXEC + "one" and got["duplicateOf"]["status"] == "in_progress"
    item = table.get(inc["incidentId"])
    assert item["duplicates"] == 1 and item["lastDuplicate"]["count"] == 2
    assert item["executionId"] == EXEC + "one" and len(item["attempts"]) == 1


def test_a_retry_after_failure_takes_the_record_and_repins_the_cutoff(table):
    inc = incident()
    records.claim(table, inc, execution_id=EXEC + "one", execution_status=running, now=NOW)
    table.update(inc["incidentId"], "SET #s = :s", {":s": "failed"}, names={"#s": "status"})
    later = dict(inc, cutoff="2024-06-02T04:15:00Z", count=3)
    got = records.claim(table, later, execution_id=EXEC + "two", execution_status=running, now=NOW)
    assert got["record"]["trigger"] == "retry" and got["cutoff"] == "2024-06-02T04:15:00Z"
    item = table.get(inc["incidentId"])
    assert item["status"] == "in_progress" and item["executionId"] == EXEC + "two"
    assert item["previousCutoffs"] == ["2024-06-02T02:00:01Z"] and item["cutoff"] == "2024-06-02T04:15:00Z"
    assert [a["trigger"] for a in item["attempts"]] == ["first", "retry"] and item["count"] == 3


def test_two_retries_racing_give_one_response(table):
    """The take-over is conditional on the record not having moved: the loser re-reads and finds it running."""
    inc = incident()
    records.claim(table, inc, execution_id=EXEC + "one", execution_status=running, now=NOW)
    table.update(inc["incidentId"], "SET #s = :s", {":s": "failed"}, names={"#s": "status"})
    stale = table.get(inc["incidentId"])

    class Racing(IncidentTable):
        """Returns the stale item once, as if both retries had read it before either wrote."""
        raced = False

        def create(self, item):
            if not self.raced:
                self.raced = True
                return stale
            return super().create(item)

    winner = records.claim(table, inc, execution_id=EXEC + "two", execution_status=running, now=NOW)
    loser = records.claim(Racing(table._c, TABLE), inc, execution_id=EXEC + "three", execution_status=running,
                          now=NOW)
    assert winner["record"]["trigger"] == "retry"
    assert loser["disposition"] == "duplicate" and "two is still running" in loser["dispositionReason"]


def test_a_dead_execution_s_claim_is_taken_over(table):
    inc = incident()
    records.claim(table, inc, execution_id=EXEC + "dead", execution_status=running, now=NOW)
    got = records.claim(table, inc, execution_id=EXEC + "new", execution_status=lambda arn: "ABORTED", now=NOW)
    assert got["record"]["trigger"] == "takeover" and "ABORTED" in got["record"]["reason"]
    assert table.get(inc["incidentId"])["executionId"] == EXEC + "new"


def test_a_missing_table_is_a_named_error_not_a_crash(aws):
    with pytest.raises(records.IncidentRecordError, match="ResourceNotFoundException"):
        records.claim(IncidentTable(aws, "no-such-table"), incident(), execution_id=EXEC + "x",
                      execution_status=running)


def test_throttling_is_transient(table, monkeypatch):
    from botocore.exceptions import ClientError

    def throttled(**kwargs):
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "PutItem")

    monkeypatch.setattr(table._c, "put_item", throttled)
    with pytest.raises(TransientAwsError):
        records.claim(table, incident(), execution_id=EXEC + "x", execution_status=running)


def test_live_appends_then_an_idempotent_finish(table):
    inc = incident()
    inc["executionId"] = EXEC + "one"
    records.claim(table, inc, execution_id=inc["executionId"], execution_status=running, now=NOW)
    entries = [{"time": "t1", "step": "attach", "status": "done", "api": "iam:AttachUserPolicy", "target": "u",
                "requestId": "r1"}]
    assert records.record_task(inc, task="identity", entries=entries, table=table,
                               results={"identity:u": {"status": "contained", "entries": entries}}) is True
    assert records.record_task(inc, task="identity", entries=[], table=table) is True  # nothing new: no write
    closing = [{"time": "t2", "step": "outcome", "status": "contained", "target": inc["incidentId"]}]
    fields = {"manifest": {"key": "k", "sha256": "sha256:aa"}, "error": None}
    assert records.finish(table, inc, execution_id=inc["executionId"], outcome="contained", entries=closing,
                          fields=fields, now=NOW) == "recorded"
    assert records.finish(table, inc, execution_id=inc["executionId"], outcome="contained", entries=closing,
                          fields=fields, now=NOW) == "already"
    item = table.get(inc["incidentId"])
    assert item["status"] == item["outcome"] == "contained" and item["finalized"] == [inc["executionId"]]
    assert [(e["task"], e["status"], e["execution"]) for e in item["timeline"]] == [
        ("identity", "done", "one"), ("finalize", "contained", "one")]
    assert item["timeline"][0]["requestId"] == "r1" and item["manifest"]["sha256"] == "sha256:aa"
    assert item["results"] == {"identity:u": {"status": "contained"}}  # the result, its entries in the timeline
    assert records.journal(item, inc["executionId"]) == item["timeline"]


def test_a_late_finish_of_an_older_execution_does_not_overwrite_the_new_owner_s_status(table):
    inc = incident()
    records.claim(table, inc, execution_id=EXEC + "old", execution_status=running, now=NOW)
    records.claim(table, dict(inc, origin="manual"), execution_id=EXEC + "new", execution_status=running, now=NOW)
    got = records.finish(table, inc, execution_id=EXEC + "old", outcome="failed",
                         entries=[{"time": "t", "status": "failed", "target": "x"}], fields={}, now=NOW)
    assert got == "timeline_only"
    item = table.get(inc["incidentId"])
    assert item["status"] == "in_progress" and item["executionId"] == EXEC + "new"
    assert item["timeline"][0]["execution"] == "old"


def test_finish_creates_a_record_when_triage_could_not(table):
    inc = incident()
    assert records.finish(table, inc, execution_id=EXEC + "x", outcome="failed", entries=[],
                          fields={"error": {"Error": "IncidentRecordError"}}, now=NOW) == "recorded"
    item = table.get(inc["incidentId"])
    assert item["status"] == "failed" and item["accountId"] == "444455556666" and item["cutoff"]


def test_append_never_creates_a_stray_item(table):
    inc = incident()
    assert records.record_task(inc, entries=[{"time": "t", "status": "done", "target": "x"}], task="identity",
                               table=table, results={"identity:x": {"status": "contained"}}) is False
    assert table.get(inc["incidentId"]) is None


def test_a_duplicate_s_task_never_appends(table):
    assert records.record_task(incident(disposition="duplicate"), entries=[{}], task="identity",
                               table=table) is False


def _entries(n: int, task: str = "isolation", size: int = 900) -> list[dict]:
    return [{"time": f"t{i:05d}", "step": "network_isolation", "status": "done", "api": "ec2:CreateTags",
             "target": f"eni-{i:017x}", "detail": "x" * size} for i in range(n)]


def test_the_timeline_stops_at_its_budget_and_counts_what_it_left_out(table, monkeypatch):
    """Bounded by design: the item never reaches DynamoDB's 400 KB, however many calls an incident makes."""
    monkeypatch.setattr(records, "MAX_TIMELINE_BYTES", 40_000)
    inc = dict(incident(), executionId=EXEC + "big")
    records.claim(table, inc, execution_id=inc["executionId"], execution_status=running, now=NOW)
    for n in range(8):  # 8 appends of ~10 KB each
        assert records.record_task(inc, task="isolation", subject=f"i-{n}", entries=_entries(10), table=table,
                                   results={f"isolation:i-{n}": {"status": "isolated", "tags": {"k": "v" * 20_000}}})
    item = table.get(inc["incidentId"])
    assert item["timelineBytes"] <= 40_000 and len(item["timeline"]) % 10 == 0  # whole appends, or none
    assert item["timelineOmitted"] == 80 - len(item["timeline"]) > 0
    assert set(item["results"]) == {f"isolation:i-{n}" for n in range(8)}  # results are still written
    assert all(r["truncated"] and r["status"] == "isolated" and "tags" not in r for r in item["results"].values())
    assert {e["subject"] for e in item["timeline"]} <= {f"i-{n}" for n in range(8)}


def test_a_result_larger_than_its_share_keeps_its_ids_and_digests():
    volume = {"volumeId": "vol-1", "stage": "done", "kmsKeyId": "k" * 2000,
              "source": {"snapshotId": "snap-1", "arn": "a" * 2000, "digest": "sha256:d", "progress": "100%"}}
    kept = records._bounded({"status": "collected", "snapshots": [volume] * 3, "startedAt": "t"}, 2_000)
    assert kept["snapshots"] == [{"volumeId": "vol-1", "stage": "done", "source": {"snapshotId": "snap-1"}}] * 3
    assert kept["status"] == "collected" and "startedAt" not in kept and kept["truncated"]
    fifty = {"instances": ["i"] * 50, "identities": [{}] * 50}
    assert records.share(fifty, "evidence:i") == 4 * records.MAX_RESULTS_BYTES // 300
    assert records.share(fifty, "isolation:i") == records.MAX_RESULTS_BYTES // 300


def test_finish_falls_back_to_an_overflow_marker_when_the_item_is_full(table):
    """records.finish: DynamoDB refuses the update (item over 400 KB): the outcome is still recorded, with a
    marker in place of the timeline entries that did not fit."""
    inc = dict(incident(), executionId=EXEC + "full")
    records.claim(table, inc, execution_id=inc["executionId"], execution_status=running, now=NOW)
    table.update(inc["incidentId"], "SET #p = :p", {":p": "x" * 300_000}, names={"#p": "padding"})
    closing = _entries(150, task="finalize", size=3000)  # ~500 KB: the item would exceed 400 KB
    assert records.finish(table, inc, execution_id=inc["executionId"], outcome="contained", entries=closing,
                          fields={"manifest": {"key": "k"}}, now=NOW) == "recorded"
    item = table.get(inc["incidentId"])
    assert item["status"] == "contained" and item["manifest"] == {"key": "k"}
    assert [(e["status"], e["target"]) for e in item["timeline"]] == [("truncated", "timeline")]


def test_executions_adapter_reports_missing_executions():
    with mock_aws():
        sfn = boto3.client("stepfunctions", region_name=REGION)
        assert Executions(sfn).status(EXEC + "nope") == "MISSING"


def test_manifest_put_carries_its_checksum_and_returns_version_and_digest():
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="ir-evidence-test", CreateBucketConfiguration={"LocationConstraint": REGION},
                         ObjectLockEnabledForBucket=True)
        s3.put_object_lock_configuration(Bucket="ir-evidence-test", ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
        body = b'{"a":1}'
        stored = EvidenceObjects(s3, "ir-evidence-test").put_json("incidents/x/manifest.json", body)
        assert stored["sha256"] == "sha256:" + hashlib.sha256(body).hexdigest() and stored["versionId"]
        head = s3.head_object(Bucket="ir-evidence-test", Key="incidents/x/manifest.json", ChecksumMode="ENABLED")
        assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(body).digest()).decode()


def test_topic_publishes_subject_message_and_string_attributes():
    with mock_aws():
        sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
        arn = sns.create_topic(Name="t")["TopicArn"]
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        qarn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=qarn)
        Topic(sns, arn).publish("IR CONTAINED: x", '{"a": 1}', {"priority": "normal", "empty": ""})
        [msg] = sqs.receive_message(QueueUrl=url)["Messages"]
        body = json.loads(msg["Body"])
        assert body["Subject"] == "IR CONTAINED: x" and json.loads(body["Message"]) == {"a": 1}
        assert body["MessageAttributes"] == {"priority": {"Type": "String", "Value": "normal"}}
