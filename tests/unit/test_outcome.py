"""Outcome decision and Finalize (pure, with fake adapters): what is decided, recorded and notified, in which order,
and what happens when recording fails."""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import json

import pytest
from botocore.exceptions import ClientError

from responder import finalize as fin
from responder.errors import TransientAwsError
from responder.outcome import decide

NOW = datetime(2024, 6, 2, 2, 0, 5, tzinfo=timezone.utc)
EXEC = "arn:aws:states:eu-west-1:123456789012:execution:ir-responder-containment:run-1"
EVENT = {"detail-type": "GuardDuty Finding", "source": "aws.guardduty", "detail": {"id": "abc"}}


def entry(status, **more):
    return {"time": "2024-06-02T02:00:02.000Z", "step": "s", "status": status, "target": "t", **more}


def ident(status, *entries, **more):
    """An identity's summary (responder.shapes) after a task whose journal was `entries`."""
    return {"kind": "identity", "type": "IAMUser", "name": "u", "target": "arn:aws:iam::1:user/u", "status": status,
            "changes": sum(1 for e in entries if e["status"] in ("done", "planned")), **more}


def state(*identities, instances=None, failure=None, scope=None, **incident):
    inc = {"incidentId": "gd-abc", "origin": "guardduty", "accountId": "444455556666", "region": "eu-west-1",
           "partition": "aws", "disposition": "respond", "dryRun": False, "cutoff": "2024-06-02T02:00:01Z",
           "identities": [{"type": "IAMUser", "name": "u"}], "instances": [], **incident}
    first = {"identities": list(identities), "status": "x"}
    if scope:
        first["scope"] = scope
    out = {"incident": inc, "results": {"identity": first, "instances": instances or []}}
    if failure:
        out["failure"] = failure
    return out


def journal(*entries):
    """Timeline entries of this execution as the tasks recorded them."""
    return [dict(e, execution="run-1", task=e.get("task", "identity")) for e in entries]


# -- outcome -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("statuses, outcome, error", [
    (["contained"], "contained", None),
    (["already_contained"], "contained", None),
    (["contained", "failed"], "partially_contained", "ContainmentIncomplete"),
    (["failed"], "failed", "ContainmentFailed"),
    (["protected"], "protected", None),
    (["protection_unverified", "contained"], "protection_unverified", "ProtectionCheckFailed"),
    (["manual", "contained"], "manual_action_required", None),
])
def test_outcome_from_target_statuses(statuses, outcome, error):
    decision = decide(state(*[ident(s) for s in statuses]))
    assert (decision["outcome"], decision["error"], decision["fail"]) == (outcome, error, error is not None)


def test_one_identity_failing_after_a_change_is_partially_contained():
    s = state(ident("failed", entry("done", api="iam:AttachUserPolicy"), entry("failed", error="AccessDenied")))
    assert decide(s)["outcome"] == "partially_contained"


def test_a_scope_capture_is_not_a_containment_change():
    s = state(ident("failed", entry("failed", error="AccessDenied")),
              scope={"entries": [entry("done", api="s3:PutObject")], "captures": []})
    assert decide(s)["outcome"] == "failed"


def test_dry_run_duplicate_and_not_handled():
    assert decide(state(ident("planned"), dryRun=True))["outcome"] == "dry_run_plan"
    assert decide(state(disposition="duplicate"))["outcome"] == "duplicate"
    assert decide(state(disposition="not_handled"))["outcome"] == "not_handled"


def test_an_evidence_digest_mismatch_names_its_error():
    item = {"instanceId": "i-1", "isolation": {"status": "isolated", "changes": 3},
            "evidence": {"status": "failed", "error": "EvidenceIntegrityError"}}
    assert decide(state(instances=[item], identities=[]))["error"] == "EvidenceIntegrityError"


# -- summary and timeline ------------------------------------------------------------------------------------
def test_every_failure_slot_becomes_a_failed_timeline_entry():
    s = state(instances=[{"instanceId": "i-1",
                          "isolation": {"status": "failed", "failure": {"task": "isolation", "target": "i-1",
                                                                        "error": "States.Timeout", "cause": "slow"}},
                          "evidence": {"status": "failed", "failure": {"task": "evidence", "target": "i-1",
                                                                       "error": "SnapshotFailed", "cause": "error"}}}],
              failure={"task": "contain", "target": "workflow", "error": "States.Runtime", "cause": "boom"},
              identities=[])
    failed = [(e["task"], e["target"], e["error"]) for e in fin.failure_entries(s, "now")]
    assert failed == [("isolation", "i-1", "States.Timeout"), ("evidence", "i-1", "SnapshotFailed"),
                      ("contain", "workflow", "States.Runtime")]
    assert decide(s)["outcome"] == "failed"


def test_the_identity_branch_failing_as_a_whole_is_recorded():
    s = state()
    s["results"]["identity"] = {"status": "failed", "identities": [],
                                "failure": {"task": "identity", "target": "identities", "error": "AccountAccessError",
                                            "cause": "cannot assume"}}
    [failure] = fin.summary(s)["failures"]
    assert failure == {"task": "identity", "target": "identities", "step": "identity", "error": "AccountAccessError",
                       "message": "cannot assume"}


def test_the_failures_listed_come_from_this_execution_s_journal():
    entries = journal(entry("done", n=1), entry("failed", error="AccessDenied", api="iam:AttachUserPolicy"))
    out = fin.summary(state(ident("failed", *entries)), journal=entries)
    assert [(f["api"], f["error"]) for f in out["failures"]] == [("iam:AttachUserPolicy", "AccessDenied")]


def test_a_dry_run_plan_lists_every_planned_call_with_api_and_target():
    entries = journal(entry("planned", api="s3:PutObject", target="s3://b/k", params={"Bucket": "b", "Key": "k"}),
                      entry("planned", api="iam:AttachUserPolicy", target="arn:aws:iam::1:user/u",
                            params={"UserName": "u"}))
    out = fin.summary(state(ident("planned", *entries[1:]), dryRun=True), journal=entries)
    assert [(p["api"], p["target"]) for p in out["plan"]] == [("s3:PutObject", "s3://b/k"),
                                                                ("iam:AttachUserPolicy", "arn:aws:iam::1:user/u")]
    assert out["plan"][1]["params"] == {"UserName": "u"}


def test_the_output_stays_bounded_however_many_calls_were_planned_or_failed():
    entries = journal(*[entry("planned", api="iam:PutUserPolicy", target=f"u{i}", params={"PolicyDocument": "x" * 900})
                        for i in range(400)],
                      *[entry("failed", api="iam:PutUserPolicy", target=f"u{i}", error="AccessDenied",
                              message="m" * 300) for i in range(200)])
    out = fin.summary(state(ident("failed", *entries), dryRun=True), journal=entries)
    assert len(out["failures"]) == fin.MAX_LISTED and out["failuresOmitted"] == 200 - fin.MAX_LISTED
    assert out["planOmitted"] == 400 - len(out["plan"]) and len(json.dumps(out)) < 64 * 1024


# -- finalize with fakes ---------------------------------------------------------------------------------------
class Calls(list):
    pass


class FakeBucket:
    def __init__(self, calls, fail=None):
        self.calls, self.fail = calls, fail

    bucket = "b"

    def put_json_once(self, key, body, content_type="application/json"):
        kind = "report" if "/report-" in key else "manifest"  # the report is written first (README "The incident report")
        self.calls.append((kind, key))
        if self.fail:
            raise self.fail
        self.stored = getattr(self, "stored", {})
        self.stored[key] = body
        return {"bucket": "b", "key": key, "uri": f"s3://b/{key}", "versionId": "v1", "bytes": len(body),
                "sha256": "sha256:" + hashlib.sha256(body).hexdigest() if isinstance(body, bytes) else "sha256:x"}

    def get_bytes(self, key, version_id=None):
        self.calls.append(("read", key))
        return self.stored[key]


class FakeTable:
    def __init__(self, calls, fail=None, timeline=()):
        self.calls, self.fail, self.items, self.timeline = calls, fail, {}, list(timeline)

    def update(self, incident_id, expression, values, *, names=None, condition=None):
        self.calls.append(("record", incident_id))
        if self.fail:
            raise self.fail
        self.items[incident_id] = (expression, values, names)
        return True

    def get(self, incident_id):
        return {"incidentId": incident_id, "timeline": self.timeline}


class FakeTopic:
    def __init__(self, calls, fail=None):
        self.calls, self.fail, self.sent = calls, fail, []

    def publish(self, subject, message, attributes):
        self.calls.append(("notify", subject))
        if self.fail:
            raise self.fail
        self.sent.append((subject, message, attributes))
        return "msg-1"


def client_error(code):
    return ClientError({"Error": {"Code": code, "Message": code}}, "Op")


def run(s, *, bucket_fail=None, table_fail=None, topic_fail=None, configured=True, timeline=(), raw=None):
    calls = Calls()
    b, t, p = FakeBucket(calls, bucket_fail), FakeTable(calls, table_fail, timeline), FakeTopic(calls, topic_fail)
    out = fin.finalize(s, execution_id=EXEC, table=(lambda: t) if configured else None,
                       bucket=(lambda incident_id: b) if configured else None,
                       topic=(lambda: p) if configured else None, table_name="ir-responder-incidents", now=NOW,
                       execution_input=lambda: raw if raw is not None else EVENT)
    return out, calls, t, p


def test_manifest_then_record_then_notification():
    out, calls, table, topic = run(state(ident("contained", entry("done"))))
    # the report's page and CSV first (each read back), then the manifest that names them
    assert [c[0] for c in calls] == ["report", "read", "report", "read", "manifest", "record", "notify"]
    assert out["manifest"]["key"] == "incidents/gd-abc/manifest-0001.json"  # this attempt's write-once name
    assert out["record"] == {"table": "ir-responder-incidents", "incidentId": "gd-abc", "result": "recorded"}
    assert out["notification"] == {"subject": topic.sent[0][0], "messageId": "msg-1"}
    assert out["fail"] is False


@pytest.mark.parametrize("changes", [{"dryRun": True}, {"disposition": "not_handled"}])
def test_no_manifest_for_a_dry_run_or_a_finding_not_acted_on(changes):
    _, calls, _, _ = run(state(ident("planned"), **changes))
    assert [c[0] for c in calls] == ["record", "notify"]


def test_a_duplicate_only_notifies_its_record_is_the_first_incident_s():
    out, calls, _, _ = run(state(disposition="duplicate", duplicateOf={"executionId": "first", "status": "contained"}))
    assert [c[0] for c in calls] == ["notify"]
    assert out["outcome"] == "duplicate" and out["duplicateOf"]["status"] == "contained"


def test_a_transient_error_before_notifying_retries_finalize_without_a_message():
    with pytest.raises(TransientAwsError):
        run(state(ident("contained")), table_fail=client_error("ThrottlingException"))


def test_a_hard_recording_error_is_notified_and_fails_the_execution():
    out, calls, _, topic = run(state(ident("contained")), bucket_fail=client_error("AccessDenied"))
    assert [c[0] for c in calls] == ["report", "manifest", "record", "notify"]
    assert out["outcome"] == "contained" and out["fail"] is True and out["error"] == "IncidentRecordIncomplete"
    assert [e["step"] for e in out["recordingErrors"]] == ["report", "manifest"] and "AccessDenied" in out["cause"]
    assert '"recordingErrors"' in topic.sent[0][1]


def test_a_containment_failure_keeps_its_error_name_when_recording_also_fails():
    out, _, _, _ = run(state(ident("failed")), topic_fail=client_error("AuthorizationError"))
    assert out["error"] == "ContainmentFailed" and out["recordingErrors"][0]["step"] == "notify"


def test_missing_configuration_is_reported_not_ignored():
    out, calls, _, _ = run(state(ident("contained")), configured=False)
    assert calls == []
    assert {e["step"] for e in out["recordingErrors"]} == {"manifest", "record", "notify"}
    assert out["fail"] is True


def test_when_triage_failed_the_incident_is_derived_from_the_input_and_recorded():
    raw = {"manual": {"accountId": "444455556666", "region": "eu-west-1", "reason": "r", "iamUsers": ["u"],
                      "incidentId": "IR-9"}}
    s = {"failure": {"task": "triage", "target": "incident", "error": "IncidentRecordError", "cause": "table missing"}}
    out, calls, table, topic = run(s, raw=raw)
    assert out["incidentId"] == "IR-9" and out["outcome"] == "failed" and out["error"] == "ContainmentFailed"
    assert [c[0] for c in calls] == ["report", "read", "report", "read", "manifest", "record", "notify"]
    assert topic.sent[0][0].startswith("IR FAILED - ACT NOW: user/u in 444455556666")
