"""Notifications: a subject a person can triage from a phone, the details as JSON, attributes for filtering."""
from __future__ import annotations

import json

import pytest

from responder import notify

EXECUTION = "arn:aws:states:eu-west-1:123456789012:execution:ir-responder-containment:local-1"


def summary(outcome="contained", **changes):
    base = {"incidentId": "gd-a2c6e5f0b8d94f6c9e1b7a3d5f2c8e41", "outcome": outcome, "accountId": "444455556666",
            "region": "eu-west-1", "severity": 5.3, "findingType": "UnauthorizedAccess:IAMUser/MaliciousIPCaller",
            "identities": [{"type": "IAMUser", "name": "ci-deployer", "target": "arn:aws:iam::444455556666:user/ci-deployer",
                            "status": outcome}],
            "instances": [], "executionId": EXECUTION, "failures": []}
    return {**base, **changes}


def test_subject_reads_outcome_target_account_severity_incident():
    assert notify.subject(summary()) == \
        "IR CONTAINED: user/ci-deployer in 444455556666 sev 5.3 [gd-a2c6e5f0b8d94f6c9e1b7a3d5f2c8e41]"


@pytest.mark.parametrize("outcome, words", [
    ("partially_contained", "PARTIAL - ACT NOW"), ("failed", "FAILED - ACT NOW"),
    ("protected", "PROTECTED - NOT CONTAINED"), ("protection_unverified", "NOT CONTAINED - PROTECTION UNVERIFIED"),
    ("manual_action_required", "MANUAL ACTION REQUIRED"), ("not_handled", "NOT HANDLED"),
])
def test_every_outcome_has_words_a_person_acts_on(outcome, words):
    assert notify.subject(summary(outcome)).startswith(f"IR {words}: ")


def test_dry_run_and_duplicate_subjects_say_what_they_are():
    plan = [{"api": "iam:AttachUserPolicy", "target": "u"}] * 4
    assert notify.subject(summary("dry_run_plan", plan=plan)).startswith("IR DRY RUN (4 changes planned): ")
    dup = summary("duplicate", duplicateOf={"status": "contained", "executionId": "x"})
    assert notify.subject(dup).startswith("IR DUPLICATE (contained): user/ci-deployer")


def test_several_targets_show_the_first_and_a_count():
    s = summary(instances=[{"instanceId": "i-0a1b2c3d4e5f60718"}, {"instanceId": "i-0a1b2c3d4e5f60719"}])
    assert ": user/ci-deployer +2 in " in notify.subject(s)


@pytest.mark.parametrize("name", ["x" * 64, "ünïcødé-ßervice", "tab\there\nnewline"])
def test_subjects_are_short_printable_ascii_on_one_line(name):
    s = summary("protection_unverified", incidentId="IR-" + "9" * 60,
                identities=[{"type": "AssumedRole", "name": name, "status": "protection_unverified"}] * 3)
    text = notify.subject(s)
    assert len(text) <= notify.MAX_SUBJECT < 100
    assert text.isascii() and text.isprintable()
    assert text.startswith("IR NOT CONTAINED - PROTECTION UNVERIFIED: role/")


def test_a_finding_without_targets_names_its_type():
    s = summary("not_handled", identities=[], dispositionReason="resource type S3Bucket has no automated containment")
    assert notify.subject(s).startswith("IR NOT HANDLED: UnauthorizedAccess:IAMUser/MaliciousIPCaller in ")


def test_message_is_json_with_what_a_responder_needs():
    failures = [{"task": "identity", "target": "AKIA1", "step": "deactivate_access_keys", "api": "iam:UpdateAccessKey",
                 "error": "AccessDenied", "message": "denied"}]
    s = summary("partially_contained", failures=failures, cutoff="2024-06-02T02:00:01Z",
                manifest={"uri": "s3://b/incidents/x/manifest.json", "sha256": "sha256:ab"},
                record={"table": "ir-responder-incidents", "incidentId": "gd-a2c6e5f0b8d94f6c9e1b7a3d5f2c8e41"})
    subject, text, attributes = notify.render(s)
    body = json.loads(text)
    assert body["outcome"] == "partially_contained" and body["priority"] == "high"
    assert "1 step(s) failed" in body["headline"] and "Nothing was undone" in body["headline"]
    assert body["failures"] == failures and body["nothingUndone"] is True
    assert body["targets"][0]["status"] == "partially_contained"
    assert body["manifest"]["sha256"] == "sha256:ab" and body["record"]["table"] == "ir-responder-incidents"
    assert body["execution"]["console"] == (
        "https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/" + EXECUTION)
    assert body["cli"] == "python -m cli status gd-a2c6e5f0b8d94f6c9e1b7a3d5f2c8e41"
    assert attributes == {"outcome": "partially_contained", "priority": "high",
                          "incidentId": "gd-a2c6e5f0b8d94f6c9e1b7a3d5f2c8e41", "accountId": "444455556666"}


def test_a_dry_run_message_lists_each_change_with_its_api_and_target():
    plan = [{"api": "iam:AttachUserPolicy", "target": "arn:aws:iam::1:user/u", "params": {"UserName": "u"}},
            {"api": "iam:UpdateAccessKey", "target": "AKIA1"}]
    body = json.loads(notify.render(summary("dry_run_plan", plan=plan, dryRun=True))[1])
    assert body["plan"] == [{"api": "iam:AttachUserPolicy", "target": "arn:aws:iam::1:user/u"},
                            {"api": "iam:UpdateAccessKey", "target": "AKIA1"}]
    assert body["priority"] == "normal" and "2 change(s) would be made. Nothing changed." in body["headline"]


@pytest.mark.parametrize("outcome, priority", [("duplicate", "low"), ("not_handled", "low"), ("contained", "normal"),
                                               ("protected", "high"), ("manual_action_required", "high")])
def test_priority_lets_a_pager_filter(outcome, priority):
    assert notify.render(summary(outcome))[2]["priority"] == priority


def test_a_huge_plan_is_capped_and_the_message_stays_under_the_sns_limit():
    plan = [{"api": "iam:PutRolePolicy", "target": "r" * 200}] * 5000
    _, text, _ = notify.render(summary("dry_run_plan", plan=plan))
    body = json.loads(text)
    assert len(text.encode()) <= notify.MAX_MESSAGE_BYTES
    assert len(body["plan"]) == notify.MAX_LISTED and body["planLeftOut"] == 5000 - notify.MAX_LISTED


def test_console_link_only_for_the_standard_partition():
    assert notify.console_link("arn:aws-cn:states:cn-north-1:1:execution:sm:x") is None
    assert notify.console_link("") is None
