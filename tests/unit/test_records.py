"""The incident record's decisions (pure): one response per finding, retries, escalation, the pinned cut-off."""
from __future__ import annotations

import json

import pytest

from responder import records
from responder.records import Decision, band, compact, decide

ME = "arn:aws:states:eu-west-1:123456789012:execution:ir-responder-containment:second"
FIRST = "arn:aws:states:eu-west-1:123456789012:execution:ir-responder-containment:first"
OLD_CUTOFF, NEW_CUTOFF = "2024-06-02T02:00:01Z", "2024-06-02T04:15:00Z"


def incident(**changes):
    base = {"incidentId": "gd-abc", "origin": "guardduty", "severity": 5.3, "count": 2, "cutoff": NEW_CUTOFF,
            "dryRun": False, "disposition": "respond"}
    return {**base, **changes}


def existing(status, **changes):
    base = {"incidentId": "gd-abc", "status": status, "executionId": FIRST, "cutoff": OLD_CUTOFF, "severity": 5.3,
            "attempts": [{"execution": "first"}], "dryRun": False}
    return {**base, **changes}


def running(_arn):
    return "RUNNING"


def never(_arn):
    raise AssertionError("the execution's status must not be asked")


@pytest.mark.parametrize("status", ["contained", "protected", "manual_action_required", "not_handled"])
def test_a_republished_finding_of_an_answered_incident_is_a_duplicate(status):
    d = decide(existing(status), incident(), ME, execution_status=never)
    assert d.action == "duplicate" and d.cutoff == OLD_CUTOFF
    assert "first" in d.reason and status in d.reason


def test_while_the_first_response_runs_a_second_event_is_a_duplicate():
    d = decide(existing("in_progress"), incident(), ME, execution_status=running)
    assert d == Decision("duplicate", "", OLD_CUTOFF, "the response first is still running")


def test_an_unknown_execution_state_is_treated_as_running():
    d = decide(existing("in_progress"), incident(), ME, execution_status=lambda arn: "UNKNOWN")
    assert d.action == "duplicate" and "could not be checked" in d.reason


@pytest.mark.parametrize("state", ["FAILED", "ABORTED", "TIMED_OUT", "SUCCEEDED", "MISSING"])
def test_an_in_progress_record_whose_execution_ended_is_taken_over_with_a_fresh_cutoff(state):
    d = decide(existing("in_progress"), incident(), ME, execution_status=lambda arn: state)
    assert (d.action, d.trigger, d.cutoff) == ("respond", "takeover", NEW_CUTOFF)
    assert state in d.reason


@pytest.mark.parametrize("status", ["failed", "partially_contained", "protection_unverified"])
def test_a_failed_incident_is_retried_with_a_fresh_cutoff(status):
    d = decide(existing(status), incident(), ME, execution_status=never)
    assert (d.action, d.trigger, d.cutoff) == ("respond", "retry", NEW_CUTOFF)


def test_retries_stop_after_the_limit():
    three = existing("failed", attempts=[{}] * records.MAX_AUTOMATIC_ATTEMPTS)
    d = decide(three, incident(), ME, execution_status=never)
    assert d.action == "duplicate" and "manual request" in d.reason


def test_the_cutoff_never_moves_back():
    d = decide(existing("failed", cutoff="2030-01-01T00:00:00Z"), incident(), ME, execution_status=never)
    assert d.cutoff == "2030-01-01T00:00:00Z"


@pytest.mark.parametrize("old, new, expected", [
    (5.3, 6.9, "duplicate"),      # same band (Medium)
    (5.3, 7.0, "escalation"),     # Medium -> High
    (8.0, 9.5, "escalation"),     # High -> Critical
    (8.0, 5.0, "duplicate"),      # lower
    (3.0, 4.0, "escalation"),     # Low (not acted on) -> Medium
])
def test_a_higher_severity_band_responds_again(old, new, expected):
    d = decide(existing("contained", severity=old), incident(severity=new), ME, execution_status=never)
    assert (d.trigger or d.action) == expected


def test_an_escalation_of_a_contained_incident_moves_the_cutoff_to_now():
    # issue 10: sessions minted after the first response must not survive an escalation that says "contained"
    d = decide(existing("contained", severity=5.0), incident(severity=8.0), ME, execution_status=never)
    assert (d.action, d.trigger, d.cutoff) == ("respond", "escalation", NEW_CUTOFF)


def test_the_cutoff_never_moves_back():
    d = decide(existing("contained", severity=5.0), incident(severity=8.0, cutoff="2024-06-01T00:00:00Z"), ME,
               execution_status=never)
    assert d.cutoff == OLD_CUTOFF


def test_activity_after_the_cutoff_is_answered_with_a_fresh_cutoff():
    later = incident(eventLastSeen="2024-06-02T03:00:00.000Z")
    d = decide(existing("contained"), later, ME, execution_status=never)
    assert (d.action, d.trigger, d.cutoff) == ("respond", "activity", NEW_CUTOFF)
    earlier = incident(eventLastSeen="2024-06-02T01:59:00.000Z")
    assert decide(existing("contained"), earlier, ME, execution_status=never).action == "duplicate"


def test_a_new_target_is_answered_with_a_fresh_cutoff_manual_or_finding():
    stored = {"identities": [{"type": "IAMUser", "name": "alice", "accessKeyId": "AKIA1"}], "instances": []}
    same = incident(identities=[{"type": "IAMUser", "name": "ALICE", "accessKeyId": "AKIA1"}])
    assert decide(existing("contained", targets=stored), same, ME, execution_status=never).action == "duplicate"
    same_user_other_key = incident(identities=[{"type": "IAMUser", "name": "alice", "accessKeyId": "AKIA2"}])
    assert decide(existing("contained", targets=stored), same_user_other_key, ME,
                  execution_status=never).action == "duplicate"  # the whole user is quarantined already
    other = incident(identities=[{"type": "IAMUser", "name": "bob", "accessKeyId": "AKIA1"}])
    d = decide(existing("contained", targets=stored), other, ME, execution_status=never)
    assert (d.action, d.trigger, d.cutoff) == ("respond", "new_target", NEW_CUTOFF)
    manual = incident(origin="manual", identities=[], instances=["i-0123456789abcdef0"])
    d = decide(existing("contained", targets=stored), manual, ME, execution_status=never)
    assert (d.trigger, d.cutoff) == ("manual", NEW_CUTOFF) and "i-0123456789abcdef0" in d.reason
    replay = incident(origin="manual", identities=[{"type": "IAMUser", "name": "alice", "accessKeyId": "AKIA1"}])
    assert decide(existing("contained", targets=stored), replay, ME, execution_status=never).cutoff == OLD_CUTOFF


def test_a_not_found_incident_is_retried_not_a_duplicate():
    d = decide(existing("not_found"), incident(), ME, execution_status=never)
    assert (d.action, d.trigger, d.cutoff) == ("respond", "retry", NEW_CUTOFF)


def test_an_escalation_of_a_not_handled_finding_takes_a_fresh_cutoff():
    d = decide(existing("not_handled", severity=3.0), incident(severity=8.0), ME, execution_status=never)
    assert (d.trigger, d.cutoff) == ("escalation", NEW_CUTOFF)


def test_after_an_observe_only_plan_a_real_run_responds():
    d = decide(existing("dry_run_plan", dryRun=True), incident(), ME, execution_status=never)
    assert (d.action, d.trigger, d.cutoff) == ("respond", "enforce", NEW_CUTOFF)


def test_observe_only_again_is_a_duplicate():
    d = decide(existing("dry_run_plan", dryRun=True), incident(dryRun=True), ME, execution_status=never)
    assert d.action == "duplicate"


@pytest.mark.parametrize("status", ["contained", "in_progress", "failed"])
def test_manual_requests_are_never_duplicates(status):
    d = decide(existing(status), incident(origin="manual"), ME, execution_status=never)
    assert (d.action, d.trigger) == ("respond", "manual")


def test_a_manual_replay_of_a_contained_incident_reuses_the_cutoff():
    assert decide(existing("contained"), incident(origin="manual"), ME, execution_status=never).cutoff == OLD_CUTOFF


def test_a_retried_triage_resumes_its_own_claim():
    d = decide(existing("in_progress", executionId=ME), incident(), ME, execution_status=never)
    assert (d.action, d.trigger, d.cutoff) == ("respond", "resume", OLD_CUTOFF)


@pytest.mark.parametrize("severity, expected", [(1.0, 0), (3.9, 0), (4.0, 1), (6.9, 1), (7.0, 2), (8.9, 2),
                                                (9.0, 3), (10, 3), (None, -1), (True, -1)])
def test_severity_bands_are_guardduty_s(severity, expected):
    assert band(severity) == expected


def test_new_item_holds_the_finding_and_the_first_attempt():
    item = records.new_item(incident(findingId="abc", findingType="Recon:IAMUser/X", identities=[
        {"type": "IAMUser", "name": "u", "accessKeyId": "AKIA1234567890123456", "principalId": "P"}]), FIRST,
        records._now())
    assert item["status"] == "in_progress" and item["cutoff"] == NEW_CUTOFF and item["executionId"] == FIRST
    assert item["attempts"][0]["trigger"] == "first" and item["attempts"][0]["execution"] == "first"
    assert item["targets"]["identities"] == [{"type": "IAMUser", "name": "u", "accessKeyId": "AKIA1234567890123456"}]
    assert item["findingType"] == "Recon:IAMUser/X" and item["timeline"] == [] and item["duplicates"] == 0


def test_compact_tags_entries_and_cuts_large_parameters():
    big = {"time": "t", "step": "revoke", "status": "planned", "api": "iam:PutRolePolicy", "target": "r",
           "params": {"RoleName": "r", "PolicyDocument": "x" * 10_000}}
    [out] = compact([big], execution="e1", task="identity")
    assert out["execution"] == "e1" and out["task"] == "identity"
    assert out["params"] == {"RoleName": "r", "PolicyDocument": "..."}


def test_compact_keeps_failures_when_the_timeline_is_too_large():
    entries = [{"time": f"{i:06d}", "status": "done", "target": "t" * 900, "api": "iam:X"} for i in range(400)]
    entries.append({"time": "999999", "status": "failed", "target": "key", "error": "AccessDenied"})
    out = compact(entries, execution="e", task="identity")
    assert len(json.dumps(out)) < records.MAX_APPEND_BYTES + 2_000
    assert any(e["status"] == "failed" for e in out)
    assert out[-1]["status"] == "truncated" and "left out" in out[-1]["detail"]


def test_execution_name_is_the_last_field_of_the_arn():
    assert records.execution_name(FIRST) == "first"
    assert records.execution_name("") == ""


def test_the_journal_of_an_execution():
    item = {"timeline": [{"execution": "first", "task": "isolation", "subject": "i-1", "status": "done"},
                         {"execution": "run-2", "task": "isolation", "subject": "i-1", "status": "done"},
                         {"execution": "run-2", "task": "isolation", "subject": "i-2", "status": "done"},
                         {"execution": "run-2", "task": "isolation", "subject": "i-1", "status": "unchanged"}]}
    assert len(records.journal(item, "arn:aws:states:r:1:execution:sm:run-2")) == 3
    assert records.journal(None, "x") == []
