"""Evidence chain: the pure decisions (wait schedule and its history budget, descriptions, retention, gates) and the
phase machine's early exits with adapters that must not be called."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from responder import evidence
from responder.evidence import (
    Adapters,
    collect,
    collector_prefix,
    copy_description,
    isolation_gate,
    parse_description,
    retention_plan,
    set_description,
    wait_seconds,
)
from responder.settings import Settings

EXECUTION = "arn:aws:states:eu-west-1:123456789012:execution:ir-responder-containment:run-1"
OTHER_MACHINE = "arn:aws:states:eu-west-1:123456789012:execution:someone-elses-machine:run-1"
PREFIX = collector_prefix(EXECUTION)
EVENTS_PER_LOOP = 9  # CollectEvidence (TaskStateEntered, LambdaFunctionScheduled/Started/Succeeded, TaskStateExited),
# EvidenceDone (ChoiceStateEntered/Exited), WaitForEvidence (WaitStateEntered/Exited)
HISTORY_LIMIT = 25_000


def loops_for(seconds: float, instances: int = 1) -> int:
    waited, loops = 0.0, 0
    while waited < seconds:
        waited += wait_seconds(loops, waited, instances)
        loops += 1
    return loops


# -- waiting ---------------------------------------------------------------------------------------------
def test_wait_grows_geometrically_up_to_the_cap():
    assert [wait_seconds(k, 0) for k in range(8)] == [30, 60, 120, 240, 480, 900, 900, 900]


def test_after_a_day_the_cap_is_an_hour():
    assert wait_seconds(50, 24 * 3600 + 1) == 3600


def test_the_cap_scales_with_the_instances_sharing_the_history():
    assert wait_seconds(20, 0, instances=5) == 900
    assert wait_seconds(20, 0, instances=6) == 1800
    assert wait_seconds(20, 0, instances=50) == 9000


def test_a_day_of_waiting_stays_far_below_the_history_limit():
    assert loops_for(24 * 3600) == 100
    assert loops_for(24 * 3600) * EVENTS_PER_LOOP == 900  # 3.6 % of 25,000
    per_incident = {n: n * loops_for(24 * 3600, n) * EVENTS_PER_LOOP for n in range(1, 51)}  # Map: one history
    assert per_incident[5] == 4500 and per_incident[6] == 2862
    assert max(per_incident.values()) == per_incident[50] == 7650 < HISTORY_LIMIT * 0.31


def test_a_week_of_waiting_still_fits_one_history():
    week = loops_for(evidence.GIVE_UP_AFTER)
    assert week == 244 and week * EVENTS_PER_LOOP < HISTORY_LIMIT * 0.1


# -- descriptions, gates ----------------------------------------------------------------------------------
def test_descriptions_round_trip():
    assert parse_description(set_description("IR-2024-0602", "i-0abc1234")) == {
        "incident": "IR-2024-0602", "instance": "i-0abc1234", "kind": "source", "of": None, "volume": None}
    text = copy_description("forensics-copy", "gd-abc", "i-0abc1234", "snap-0123abcd", "vol-0456ef")
    assert text == "gd-abc instance i-0abc1234 evidence forensics-copy of snap-0123abcd (vol-0456ef)"
    assert parse_description(text)["of"] == "snap-0123abcd"


@pytest.mark.parametrize("text", [None, "", "IR-1 instance i-0abc evidence other", "Created by AWS Backup",
                                  "IR-1 instance i-0abc evidence source extra", "IR 1 instance i-0abc evidence source"])
def test_foreign_descriptions_do_not_parse(text):
    assert parse_description(text) is None


@pytest.mark.parametrize("isolation, skipped", [
    ({"status": "isolated"}, False), ({"status": "already_isolated"}, False), ({"status": "failed"}, False),
    ({"Error": "States.TaskFailed", "Cause": "boom"}, False), ({"status": "planned"}, False), (None, False),
    ({"status": "protected"}, True), ({"status": "protection_unverified"}, True), ({"status": "not_found"}, True),
])
def test_evidence_follows_isolation_unless_the_instance_is_protected_or_gone(isolation, skipped):
    assert bool(isolation_gate(isolation)) is skipped


def test_collector_prefix_names_this_state_machine():
    assert PREFIX == "arn:aws:states:eu-west-1:123456789012:execution:ir-responder-containment:"
    assert collector_prefix("") is None and collector_prefix("unknown") is None


# -- retention ---------------------------------------------------------------------------------------------
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def snap(n: int, incident: str, *, kind: str = "source", instance: str = "i-0abc", minutes: int = 0,
         collected_by: str = EXECUTION, state: str = "completed", source: str | None = None,
         tag_incident: str | None = None) -> dict:
    description = (set_description(incident, instance) if kind == "source"
                   else copy_description(kind, incident, instance, "snap-0f", "vol-0a"))
    return {"SnapshotId": f"snap-{n:04x}", "Description": description, "State": state,
            "StartTime": T0 + timedelta(minutes=minutes),
            "Tags": [{"Key": "ir:incident", "Value": tag_incident or incident},
                     {"Key": "ir:collected-by", "Value": collected_by},
                     {"Key": "ir:source", "Value": source or "arn:aws:ec2:eu-west-1:444455556666:volume/vol-0a"}]}


def plan(snapshots, **kw):
    args = dict(keep=7, current_incident="IR-8", instance_id="i-0abc", kinds=("source", "sharing-copy"), prefix=PREFIX)
    args.update(kw)
    return retention_plan(snapshots, **args)


def test_the_oldest_collections_age_out_whole():
    snaps = [snap(2 * n + k, f"IR-{n}", minutes=n, kind=kind)
             for n in range(1, 9) for k, kind in enumerate(("source", "sharing-copy"))]
    result = plan(snaps)
    assert result["kept"] == ["IR-8", "IR-7", "IR-6", "IR-5", "IR-4", "IR-3", "IR-2"]
    assert [s["SnapshotId"] for s in result["delete"]] == ["snap-0002", "snap-0003"]


def test_the_current_incident_is_kept_even_if_its_clock_looks_older():
    snaps = [snap(n, f"IR-{n}", minutes=100 + n) for n in range(1, 8)] + [snap(8, "IR-8", minutes=0)]
    result = plan(snaps)
    assert result["kept"][0] == "IR-8" and [s["SnapshotId"] for s in result["delete"]] == ["snap-0001"]


def test_nothing_is_deleted_within_the_limit():
    assert plan([snap(n, f"IR-{n}", minutes=n) for n in range(2, 9)])["delete"] == []


@pytest.mark.parametrize("foreign", [
    dict(collected_by=OTHER_MACHINE),                 # another tool (or another responder) made it
    dict(instance="i-0def"),                           # evidence of another instance
    dict(kind="forensics-copy"),                       # the other side's kind
    dict(tag_incident="IR-other"),                     # tags edited after creation: description disagrees
])
def test_only_this_responders_evidence_of_this_instance_is_ever_deleted(foreign):
    snaps = [snap(n, f"IR-{n}", minutes=n) for n in range(2, 9)] + [snap(1, "IR-1", minutes=1, **foreign)]
    assert plan(snaps)["delete"] == []


def test_untagged_or_undescribed_snapshots_are_never_candidates():
    snaps = [snap(n, f"IR-{n}", minutes=n) for n in range(1, 9)]
    snaps[0]["Tags"] = []
    snaps[1]["Description"] = "backup"
    assert plan(snaps)["delete"] == []


def test_without_an_execution_id_nothing_is_deleted():
    snaps = [snap(n, f"IR-{n}", minutes=n) for n in range(1, 12)]
    assert plan(snaps, prefix=None)["delete"] == []


def test_forensics_side_needs_the_member_account_in_ir_source():
    member_arn = "arn:aws:ec2:eu-west-1:444455556666:snapshot/snap-0f"
    other_arn = "arn:aws:ec2:eu-west-1:111122223333:snapshot/snap-0f"
    snaps = [snap(n, f"IR-{n}", minutes=n, kind="forensics-copy", source=member_arn) for n in range(2, 9)]
    args = dict(kinds=("forensics-copy",), source_account="444455556666")
    assert plan(snaps + [snap(1, "IR-1", kind="forensics-copy", source=other_arn)], **args)["delete"] == []
    doomed = snap(1, "IR-1", kind="forensics-copy", source=member_arn)
    assert plan(snaps + [doomed], **args)["delete"] == [doomed]


def test_pending_snapshots_are_never_deleted():
    snaps = [snap(n, f"IR-{n}", minutes=n) for n in range(2, 9)] + [snap(1, "IR-1", minutes=1, state="pending")]
    assert plan(snaps)["aged"] == ["IR-1"] and plan(snaps)["delete"] == []


def test_a_planned_collection_counts_in_a_dry_run():
    snaps = [snap(n, f"IR-{n}", minutes=n) for n in range(1, 8)]
    assert [s["SnapshotId"] for s in plan(snaps, planned_collection=True)["delete"]] == ["snap-0001"]
    assert plan(snaps)["delete"] == []


def test_retention_below_one_still_keeps_the_current_collection():
    snaps = [snap(n, f"IR-{n}", minutes=n) for n in range(1, 9)]
    assert plan(snaps, keep=0)["kept"] == ["IR-8"]


# -- the phase machine's gates: no AWS call at all -----------------------------------------------------------
def untouchable() -> Adapters:
    def boom():
        raise AssertionError("no adapter may be used")
    return Adapters(member=boom, forensics=boom, member_blocks=boom, forensics_blocks=boom, sharing_key=boom)


def event(isolation: dict) -> dict:
    incident = {"incidentId": "IR-1", "accountId": "444455556666", "region": "eu-west-1", "partition": "aws",
                "instances": ["i-0abc"], "executionId": EXECUTION}
    return {"incident": incident, "instanceId": "i-0abc", "isolation": isolation, "evidence": {"phase": "start"}}


@pytest.mark.parametrize("status", ["protected", "protection_unverified", "not_found"])
def test_protected_or_missing_instances_are_skipped_without_touching_aws(status):
    result = collect(event({"status": status}), adapters=untouchable(),
                     settings=Settings(forensics_account="999988887777"))
    assert result["done"] is True and result["status"] == "skipped" and result["waitSeconds"] == 0
    assert [e["status"] for e in result["entries"]] == ["skipped"]
