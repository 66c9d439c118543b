"""Outcome decision and Finalize (pure, with fake adapters): what is decided, recorded and notified, in which order,
and what happens when recording fails."""
from __future__ import annotations

from datetime import datetime, timezone

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
    return {"kind": "identity", "type": "IAMUser", "name": "u", "target": "arn:aws:iam::1:user/u", "status": status,
            "entries": list(entries), **more}


def state(*identities, instances=None, error=None, scope=None, **incident):
    inc = {"incidentId": "gd-abc", "origin": "guardduty", "accountId": "444455556666", "region": "eu-west-1",
           "partition": "aws", "disposition": "respond", "dryRun": False, "cutoff": "2024-06-02T02:00:01Z",
           "identities": [{"type": "IAMUser", "name": "u"}], "instances": [], **incident}
    first = {"identities": list(identities), "status": "x"}
    if scope:
        first["scope"] = scope
    out = {**EVENT, "incident": inc, "results": [first, instances or []]}
    if error:
        out["error"] = error
    return out


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
    item = {"instanceId": "i-1", "isolation": {"status": "isolated", "entries": []},
            "evidence": {"status": "failed", "error": "EvidenceIntegrityError", "entries": []}}
    assert decide(state(instances=[item], identities=[]))["error"] == "EvidenceIntegrityError"


# -- summary and timeline ------------------------------------------------------------------------------------
def test_catch_paths_become_failed_timeline_entries():
    s = state(instances=[{"instanceId": "i-1", "isolation": {"Error": "States.Timeout", "Cause": "took too long"},
                          "evidence": {"status": "failed", "done": True}, "error": "SnapshotFailed", "cause": "error"}],
              error={"Error": "States.Runtime", "Cause": "boom"}, identities=[])
    failed = [(e["task"], e["target"], e["error"]) for e in fin.timeline(s, "now") if e["status"] == "failed"]
    assert failed == [("isolation", "i-1", "States.Timeout"), ("evidence", "i-1", "SnapshotFailed"),
                      ("workflow", "gd-abc", "States.Runtime")]


def test_the_identity_branch_failing_as_a_whole_is_recorded():
    s = state()
    s["results"][0] = {"status": "failed", "identities": [], "error": "AccountAccessError", "cause": "cannot assume"}
    [failure] = fin.summary(s)["failures"]
    assert failure == {"task": "identity", "target": "identities", "step": "identity", "error": "AccountAccessError",
                       "message": "cannot assume"}


def test_what_a_task_already_recorded_is_not_recorded_twice():
    s = state(ident("contained", entry("done", n=1), entry("done", n=2)))
    s["results"][0]["recordedEntries"] = 2
    assert fin.timeline(s, "now", unrecorded_only=True) == []
    assert len(fin.timeline(s, "now")) == 2


def test_a_dry_run_plan_lists_every_planned_call_with_api_and_target():
    scope = {"entries": [entry("planned", api="s3:PutObject", target="s3://b/k", params={"Bucket": "b", "Key": "k"})],
             "captures": [{"principal": "user-u", "status": "planned", "uri": "s3://b/k"}]}
    s = state(ident("planned", entry("planned", api="iam:AttachUserPolicy", target="arn:aws:iam::1:user/u",
                                     params={"UserName": "u"})), scope=scope, dryRun=True)
    out = fin.summary(s)
    assert [(p["api"], p["target"]) for p in out["plan"]] == [("s3:PutObject", "s3://b/k"),
                                                                ("iam:AttachUserPolicy", "arn:aws:iam::1:user/u")]
    assert out["plan"][1]["params"] == {"UserName": "u"}


# -- finalize with fakes ---------------------------------------------------------------------------------------
class Calls(list):
    pass


class FakeBucket:
    def __init__(self, calls, fail=None):
        self.calls, self.fail = calls, fail

    def put_json(self, key, body):
        self.calls.append(("manifest", key))
        if self.fail:
            raise self.fail
        return {"bucket": "b", "key": key, "uri": f"s3://b/{key}", "sha256": "sha256:x", "versionId": "v1"}


class FakeTable:
    def __init__(self, calls, fail=None):
        self.calls, self.fail, self.items = calls, fail, {}

    def update(self, incident_id, expression, values, *, names=None, condition=None):
        self.calls.append(("record", incident_id))
        if self.fail:
            raise self.fail
        self.items[incident_id] = (expression, values, names)
        return True

    def get(self, incident_id):
        return {}


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


def run(s, *, bucket_fail=None, table_fail=None, topic_fail=None, configured=True):
    calls = Calls()
    b, t, p = FakeBucket(calls, bucket_fail), FakeTable(calls, table_fail), FakeTopic(calls, topic_fail)
    out = fin.finalize(s, execution_id=EXEC, table=(lambda: t) if configured else None,
                       bucket=(lambda incident_id: b) if configured else None,
                       topic=(lambda: p) if configured else None, table_name="ir-responder-incidents", now=NOW)
    return out, calls, t, p


def test_manifest_then_record_then_notification():
    out, calls, table, topic = run(state(ident("contained", entry("done"))))
    assert [c[0] for c in calls] == ["manifest", "record", "notify"]
    assert out["manifest"]["key"] == "incidents/gd-abc/manifest.json"
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
    assert [c[0] for c in calls] == ["manifest", "record", "notify"]
    assert out["outcome"] == "contained" and out["fail"] is True and out["error"] == "IncidentRecordIncomplete"
    assert out["recordingErrors"][0]["step"] == "manifest" and "AccessDenied" in out["cause"]
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
    s = {**{"manual": {"accountId": "444455556666", "region": "eu-west-1", "reason": "r", "iamUsers": ["u"],
                       "incidentId": "IR-9"}}, "error": {"Error": "IncidentRecordError", "Cause": "table missing"}}
    out, calls, table, topic = run(s)
    assert out["incidentId"] == "IR-9" and out["outcome"] == "failed" and out["error"] == "ContainmentFailed"
    assert [c[0] for c in calls] == ["manifest", "record", "notify"]
    assert topic.sent[0][0].startswith("IR FAILED - ACT NOW: user/u in 444455556666")
