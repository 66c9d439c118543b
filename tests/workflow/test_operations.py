"""Operating it for real, through the shipped state machine (local runtime): one response per finding, the incident
record and the evidence manifest, protected principals, dry run and observe-only, notifications."""
from __future__ import annotations

import hashlib
import json
import uuid

import boto3
import pytest

from state_machines import local
from tests.worlds.deployment import deployment
from tests.worlds.operations import Inbox, configured, evidence_keys, evidence_object, iam_refuses, record, summary
from tests.worlds.workflow import access_key_event, backdate_cloudtrail, iam_state, republished

MEMBER, FORENSICS, REGION = "444455556666", "999988887777", "eu-west-1"
QUARANTINE = "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV2"


dep = deployment(member_account=MEMBER, forensics_account=FORENSICS, region=REGION)


@pytest.fixture(scope="module")
def inbox(dep):
    return Inbox(dep)


def victim(dep, *, tags=None, keys=1):
    """An IAM user whose key was stolen and used (ListUsers, CreateAccessKey), and the GuardDuty event about it."""
    iam = dep.client("iam")
    name = f"victim-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name, Tags=tags or [])
    created = [iam.create_access_key(UserName=name)["AccessKey"] for _ in range(keys)]
    stolen = boto3.client("iam", aws_access_key_id=created[0]["AccessKeyId"],
                          aws_secret_access_key=created[0]["SecretAccessKey"], region_name=REGION)
    stolen.list_users()
    return name, access_key_event(account=MEMBER, region=REGION, user_type="IAMUser", name=name,
                                  key=created[0]["AccessKeyId"])


def new_role(dep, tags=None):
    name = f"app-{uuid.uuid4().hex[:8]}"
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    dep.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust), Tags=tags or [])
    return name


def added(run):
    """The calls this machinery adds (record, notification, scope, manifest and its signature).
    states:DescribeExecution is left out: the local runtime's count also catches the test's own polling of the
    execution while a handler runs."""
    return {k: v for k, v in run.api_calls.items()
            if k.split(":")[0] in ("dynamodb", "sns", "cloudtrail", "s3", "kms")}


def world(dep):
    """Everything the responder could change: the member account's IAM and the evidence bucket's objects."""
    return {"iam": iam_state(dep.client("iam")), "evidence": evidence_keys(dep)}


# -- success: record, manifest, notification -----------------------------------------------------------------
def test_a_contained_incident_is_recorded_with_its_manifest_and_notified(dep, inbox):
    name, ev = victim(dep)
    run = local.execute(ev, dep)
    assert run.status == "SUCCEEDED", run.cause
    out = run.output
    incident_id = f"gd-{ev['detail']['id']}"
    assert out["outcome"] == "contained"

    item = record(dep, incident_id)
    assert item["status"] == item["outcome"] == "contained" and item["executionId"] == run.arn
    assert item["cutoff"] == out["cutoff"] and item["finalized"] == [run.arn]
    assert item["findingType"] == ev["detail"]["type"] and item["severity"] == 5.3 and item["count"] == 1
    steps = [(e["task"], e.get("api") or e["status"]) for e in item["timeline"]]
    assert steps == [("scope", "s3:PutObject"), ("identity", "iam:AttachUserPolicy"),
                     ("identity", "unchanged"),  # no console password to remove
                     ("identity", "iam:UpdateAccessKey"), ("identity", "iam:PutUserPolicy"), ("finalize", "contained")]
    assert all(e["requestId"] for e in item["timeline"] if e.get("api"))
    assert {e["execution"] for e in item["timeline"]} == {run.name}

    [capture] = item["scope"]
    assert capture["status"] == "captured" and capture["events"] == 1  # the stolen key's ListUsers
    assert f"useridentity.username = '{name}'" in capture["athenaQuery"]

    body = evidence_object(dep, item["manifest"]["key"], item["manifest"]["versionId"])
    assert item["manifest"]["sha256"] == "sha256:" + hashlib.sha256(body).hexdigest()
    manifest = json.loads(body)
    assert manifest["incidentId"] == incident_id and manifest["outcome"] == "contained"
    assert manifest["finding"] == ev  # the raw event, exactly as received
    assert [e.get("api") for e in manifest["timeline"]] == [
        "s3:PutObject", "iam:AttachUserPolicy", None, "iam:UpdateAccessKey", "iam:PutUserPolicy"]
    [trail] = manifest["evidence"]["cloudtrail"]
    assert trail["key"] == f"incidents/{incident_id}/cloudtrail/user-{name}.json"
    assert trail["sha256"] == "sha256:" + hashlib.sha256(evidence_object(dep, trail["key"])).hexdigest()

    [note] = inbox.about(incident_id)
    assert note["subject"] == f"IR CONTAINED: user/{name} in {MEMBER} sev 5.3 [{incident_id}]"
    assert note["attributes"] == {"outcome": "contained", "priority": "normal", "incidentId": incident_id,
                                  "accountId": MEMBER}
    message = note["message"]
    assert message["headline"] == f"Contained user/{name} in account {MEMBER} ({REGION})."
    assert message["manifest"]["sha256"] == item["manifest"]["sha256"]
    assert message["record"] == {"table": dep.table_name, "incidentId": incident_id, "result": "recorded"}
    assert message["execution"]["arn"] == run.arn and message["targets"][0]["status"] == "contained"


# -- one response per finding ----------------------------------------------------------------------------------
def test_a_republished_finding_is_a_duplicate_that_changes_nothing(dep, inbox):
    name, ev = victim(dep)
    first = local.execute(ev, dep)
    before = world(dep)
    again = local.execute(republished(ev), dep)
    assert again.status == "SUCCEEDED", again.cause
    assert again.states == ["Triage", "Route", "Finalize", "Outcome", "Done"]
    assert world(dep) == before
    out = again.output
    assert out["outcome"] == "duplicate" and out["incidentId"] == first.output["incidentId"]
    assert out["duplicateOf"]["executionId"] == first.arn and out["duplicateOf"]["status"] == "contained"
    assert added(again) == {"dynamodb:PutItem": 1, "dynamodb:UpdateItem": 1, "sns:Publish": 1}
    item = record(dep, out["incidentId"])
    assert item["duplicates"] == 1 and item["lastDuplicate"]["count"] == 2 and item["status"] == "contained"
    assert item["executionId"] == first.arn and len(item["attempts"]) == 1
    notes = inbox.about(out["incidentId"])
    assert [n["attributes"]["outcome"] for n in notes] == ["contained", "duplicate"]
    assert notes[1]["subject"].startswith(f"IR DUPLICATE (contained): user/{name} in {MEMBER}")
    assert notes[1]["attributes"]["priority"] == "low"


def test_two_events_arriving_together_give_one_containment(dep):
    name, ev = victim(dep)
    sfn = local.session(None, REGION).client("stepfunctions")
    arns = [sfn.start_execution(stateMachineArn=dep.state_machine_arn, name=f"together-{uuid.uuid4().hex[:8]}",
                                input=json.dumps(e))["executionArn"] for e in (ev, republished(ev))]
    runs = [local.wait(arn, dep) for arn in arns]
    assert sorted(r.output["outcome"] for r in runs) == ["contained", "duplicate"]
    assert sum("Contain" in r.states for r in runs) == 1
    item = record(dep, runs[0].output["incidentId"])
    assert len(item["attempts"]) == 1 and item["duplicates"] == 1
    assert sum(1 for e in item["timeline"] if e.get("api") == "iam:AttachUserPolicy") == 1
    assert iam_state(dep.client("iam"))["users"][name]["attached"] == [QUARANTINE]


def test_a_severity_escalation_responds_again_on_the_same_incident(dep, inbox):
    name, ev = victim(dep)
    first = local.execute(ev, dep)
    before = iam_state(dep.client("iam"))
    run = local.execute(republished(ev, severity=8.0), dep)
    assert run.status == "SUCCEEDED" and run.output["outcome"] == "contained"
    assert run.output["attempt"]["trigger"] == "escalation"
    # an escalation's cut-off is UTC now (never back): sessions minted since the first response die too
    assert run.output["cutoff"] >= first.output["cutoff"]
    after = iam_state(dep.client("iam"))
    revoke = after["users"][name]["inline"].pop("AWSRevokeOlderSessions")
    assert revoke["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"] == run.output["cutoff"]
    before["users"][name]["inline"].pop("AWSRevokeOlderSessions")
    assert after == before  # otherwise already contained: the re-run reads and changes nothing else
    item = record(dep, run.output["incidentId"])
    assert [a["trigger"] for a in item["attempts"]] == ["first", "escalation"] and item["severity"] == 8.0
    assert "sev 8 " in inbox.about(run.output["incidentId"])[-1]["subject"]


def test_a_failed_step_is_recorded_and_a_republished_finding_retries_with_a_fresh_cutoff(dep, inbox):
    name, ev = victim(dep)
    with iam_refuses("update_access_key"):
        run = local.execute(ev, dep)
    assert run.status == "FAILED" and run.error == "ContainmentIncomplete"
    out = summary(run)
    item = record(dep, out["incidentId"])
    assert item["status"] == "partially_contained"
    [failed] = [e for e in item["timeline"] if e["status"] == "failed"]
    assert (failed["api"], failed["error"], failed["message"]) == ("iam:UpdateAccessKey", "AccessDenied",
                                                                    "An error occurred (AccessDenied) when calling "
                                                                    "the UpdateAccessKey operation: not allowed")
    manifest = json.loads(evidence_object(dep, item["manifest"]["key"], item["manifest"]["versionId"]))
    assert manifest["outcome"] == "partially_contained"
    assert [e["error"] for e in manifest["timeline"] if e["status"] == "failed"] == ["AccessDenied"]
    [note] = inbox.about(out["incidentId"])
    assert note["subject"].startswith("IR PARTIAL - ACT NOW: ") and note["attributes"]["priority"] == "high"
    assert note["message"]["failures"][0]["api"] == "iam:UpdateAccessKey"

    retry = local.execute(republished(ev), dep)
    assert retry.status == "SUCCEEDED" and retry.output["outcome"] == "contained"
    assert retry.output["attempt"]["trigger"] == "retry"
    item = record(dep, out["incidentId"])
    assert item["status"] == "contained" and "error" not in item
    assert item["cutoff"] == retry.output["cutoff"] >= out["cutoff"]
    # the earlier cut-off is kept when the retry's is later (both are whole seconds: a fast retry may share it)
    assert item.get("previousCutoffs", []) == ([out["cutoff"]] if item["cutoff"] != out["cutoff"] else [])
    assert {s for _, s in iam_state(dep.client("iam"))["users"][name]["keys"]} == {"Inactive"}
    prefix = f"incidents/{out['incidentId']}/manifest"
    # one write-once manifest (and signature) per attempt, each with exactly one version: the first is kept
    assert [k.split("@")[0] for k in evidence_keys(dep, prefix)] == [
        f"{prefix}-0001.json", f"{prefix}-0001.sig.json", f"{prefix}-0002.json", f"{prefix}-0002.sig.json"]
    assert retry.output["manifest"]["key"] == item["manifest"]["key"] == f"{prefix}-0002.json"


def test_a_manual_replay_shares_the_record_and_changes_nothing(dep):
    name, _ = victim(dep)
    request = {"manual": {"accountId": MEMBER, "region": REGION, "reason": "phished", "iamUsers": [name],
                          "incidentId": f"IR-{uuid.uuid4().hex[:8]}"}}
    first = local.execute(request, dep)
    before = iam_state(dep.client("iam"))
    again = local.execute(request, dep)
    assert again.output["outcome"] == "contained" and again.output["attempt"]["trigger"] == "manual"
    assert again.output["cutoff"] == first.output["cutoff"]
    assert iam_state(dep.client("iam")) == before
    item = record(dep, request["manual"]["incidentId"])
    assert [a["trigger"] for a in item["attempts"]] == ["first", "manual"]
    assert sorted(item["finalized"]) == sorted([first.arn, again.arn])


def test_a_dead_claim_is_taken_over(dep):
    name, ev = victim(dep)
    ddb = local.session(None, REGION).client("dynamodb")
    dead = dep.state_machine_arn.replace(":stateMachine:", ":execution:") + ":died-long-ago"
    ddb.put_item(TableName=dep.table_name, Item={
        "incidentId": {"S": f"gd-{ev['detail']['id']}"}, "status": {"S": "in_progress"},
        "executionId": {"S": dead}, "cutoff": {"S": "2024-06-02T02:00:01Z"}, "attempts": {"L": [{"M": {}}]}})
    run = local.execute(ev, dep)
    assert run.output["outcome"] == "contained" and run.output["attempt"]["trigger"] == "takeover"
    assert iam_state(dep.client("iam"))["users"][name]["attached"] == [QUARANTINE]


def test_when_the_incident_cannot_be_claimed_nothing_changes_and_a_person_is_told(dep, inbox):
    name, ev = victim(dep)
    before = iam_state(dep.client("iam"))
    with configured(dep, IR_INCIDENT_TABLE="no-such-table"):
        run = local.execute(ev, dep)
    assert run.status == "FAILED" and run.error == "ContainmentFailed"
    assert "Contain" not in run.states and iam_state(dep.client("iam")) == before
    out = summary(run)
    assert out["failure"]["error"] == "IncidentRecordError"
    assert [e["step"] for e in out["recordingErrors"]] == ["read record", "record"]  # no table to read or write
    [note] = inbox.about(out["incidentId"])
    assert note["subject"].startswith(f"IR FAILED - ACT NOW: user/{name}")


# -- protected principals --------------------------------------------------------------------------------------
def test_a_protected_principal_is_untouched_and_notified_loudly(dep, inbox):
    name, ev = victim(dep, tags=[{"Key": "ir:protected", "Value": "true"}])
    backdate_cloudtrail("CreateUser", name, days=30)  # an administrator tagged it last month, not the attacker now
    before = world(dep)
    run = local.execute(ev, dep)
    assert run.status == "SUCCEEDED" and run.output["outcome"] == "protected"
    assert world(dep)["iam"] == before["iam"]
    [note] = inbox.about(run.output["incidentId"])
    assert note["subject"].startswith(f"IR PROTECTED - NOT CONTAINED: user/{name}")
    assert note["attributes"]["priority"] == "high"
    assert "is tagged ir:protected=true (set by arn:aws:iam::" in note["message"]["targets"][0]["reason"]
    assert record(dep, run.output["incidentId"])["status"] == "protected"


def test_a_break_glass_pattern_protects_a_role(dep, inbox):
    role = new_role(dep)
    before = iam_state(dep.client("iam"))
    with configured(dep, IR_PROTECTED_PRINCIPALS=f"arn:aws:iam::*:role/{role[:6]}*"):
        run = local.execute({"manual": {"accountId": MEMBER, "region": REGION, "reason": "r", "roles": [role],
                                        "incidentId": f"IR-{uuid.uuid4().hex[:8]}"}}, dep)
    assert run.output["outcome"] == "protected" and iam_state(dep.client("iam")) == before
    assert "matches the protected pattern" in inbox.about(run.output["incidentId"])[0]["message"]["targets"][0]["reason"]


def test_tags_that_cannot_be_read_fail_closed(dep, inbox):
    name, ev = victim(dep)
    before = iam_state(dep.client("iam"))
    with iam_refuses("list_user_tags"):
        run = local.execute(ev, dep)
    assert run.status == "FAILED" and run.error == "ProtectionCheckFailed"
    assert iam_state(dep.client("iam")) == before
    out = summary(run)
    assert out["outcome"] == "protection_unverified"
    [note] = inbox.about(out["incidentId"])
    assert note["subject"].startswith("IR NOT CONTAINED - PROTECTION UNVERIFIED: ")


def test_unusable_protection_configuration_fails_closed(dep, inbox):
    """A break-glass entry that is not an ARN pattern would never match: nothing is contained until it is fixed.
    (A missing IR_PROTECTED_PRINCIPALS is refused the same way: tests/unit/test_outcome_protection.py.)"""
    name, _ = victim(dep)
    role = new_role(dep)
    before = iam_state(dep.client("iam"))
    with configured(dep, IR_PROTECTED_PRINCIPALS="BreakGlass*"):
        run = local.execute({"manual": {"accountId": MEMBER, "region": REGION, "reason": "r", "iamUsers": [name],
                                        "roles": [role], "incidentId": f"IR-{uuid.uuid4().hex[:8]}"}}, dep)
    assert run.status == "FAILED" and run.error == "ProtectionCheckFailed"
    assert iam_state(dep.client("iam")) == before
    out = summary(run)
    assert [t["status"] for t in out["identities"]] == ["protection_unverified", "protection_unverified"]
    [note] = inbox.about(out["incidentId"])
    assert note["message"]["protectionConfigError"] == (
        "IR_PROTECTED_PRINCIPALS entry 'BreakGlass*' is not an ARN pattern (arn:...)")


# -- dry run and observe-only ----------------------------------------------------------------------------------
def test_a_dry_run_changes_nothing_and_plans_every_change(dep, inbox):
    name, _ = victim(dep, keys=2)
    role = new_role(dep)
    incident_id = f"IR-{uuid.uuid4().hex[:8]}"
    before = world(dep)
    run = local.execute({"manual": {"accountId": MEMBER, "region": REGION, "reason": "drill", "iamUsers": [name],
                                    "roles": [role], "incidentId": incident_id, "dryRun": True}}, dep)
    assert run.status == "SUCCEEDED" and run.output["outcome"] == "dry_run_plan"
    assert world(dep) == before  # nothing changed: IAM, and no evidence object written either
    keys = sorted(k for k, _ in before["iam"]["users"][name]["keys"])
    user_arn, role_arn = f"arn:aws:iam::{MEMBER}:user/{name}", f"arn:aws:iam::{MEMBER}:role/{role}"
    prefix = f"s3://{dep.bucket}/incidents/{incident_id}/cloudtrail"
    assert sorted((p["api"], p["target"]) for p in run.output["plan"]) == sorted([
        ("s3:PutObject", f"{prefix}/user-{name}.json"), ("s3:PutObject", f"{prefix}/role-{role}.json"),
        ("iam:AttachUserPolicy", user_arn), ("iam:UpdateAccessKey", keys[0]), ("iam:UpdateAccessKey", keys[1]),
        ("iam:PutUserPolicy", user_arn), ("iam:PutRolePolicy", role_arn)])
    attach = next(p for p in run.output["plan"] if p["api"] == "iam:AttachUserPolicy")
    assert attach["params"] == {"UserName": name, "PolicyArn": QUARANTINE}
    item = record(dep, incident_id)
    assert item["status"] == "dry_run_plan" and len(item["plan"]) == 7 and "manifest" not in item
    [note] = inbox.about(incident_id)
    assert note["subject"].startswith("IR DRY RUN (7 changes planned): ")
    assert len(note["message"]["plan"]) == 7


def test_observe_only_plans_and_a_later_enforcing_deployment_responds(dep):
    name, ev = victim(dep)
    before = iam_state(dep.client("iam"))
    with configured(dep, IR_OBSERVE_ONLY="true"):
        plan = local.execute(ev, dep)
        again = local.execute(republished(ev), dep)
    assert plan.output["outcome"] == "dry_run_plan" and again.output["outcome"] == "duplicate"
    assert iam_state(dep.client("iam")) == before
    enforced = local.execute(republished(ev), dep)
    assert enforced.output["outcome"] == "contained" and enforced.output["attempt"]["trigger"] == "enforce"
    assert iam_state(dep.client("iam"))["users"][name]["attached"] == [QUARANTINE]


# -- cost --------------------------------------------------------------------------------------------------------
def test_what_this_machinery_adds_per_incident(dep):
    """States are unchanged (no state added); AWS calls added for an IAM-user incident, counted (Finalize reads the
    record once: the journal and the results are read back, not carried in the state)."""
    name, ev = victim(dep)
    run = local.execute(ev, dep)
    assert run.transitions == 10  # Triage Route Contain HasIdentities ContainIdentities HasInstances NoInstances Finalize Outcome Done
    # s3:PutObject: the CloudTrail scope capture, the report's page and CSV, the manifest and its signature (kms:Sign,
    # responder.custody); s3:GetObject: the report reads the capture and reads its two files back (Finalize);
    # the rotation list reads the member Region's keys: ListKeys once, each key's policy and grants (responder.rotation)
    keys = len(dep.client("kms").list_keys()["Keys"])
    assert added(run) == {"dynamodb:PutItem": 1, "dynamodb:UpdateItem": 2, "dynamodb:GetItem": 1,
                          "cloudtrail:LookupEvents": 2, "s3:PutObject": 5, "s3:GetObject": 3, "kms:Sign": 1, "sns:Publish": 1,
                          "kms:ListKeys": 1, "kms:GetKeyPolicy": keys, "kms:ListGrants": keys}
