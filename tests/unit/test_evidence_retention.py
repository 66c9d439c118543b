"""Evidence retention and descriptions (responder.evidence_retention): pure rules, no AWS."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from responder.evidence_retention import (
    collector_prefix,
    copy_description,
    parse_description,
    recent_collection,
    retention_plan,
    set_description,
)

EXECUTION = "arn:aws:states:eu-west-1:123456789012:execution:ir-responder-containment:run-1"
OTHER_MACHINE = "arn:aws:states:eu-west-1:123456789012:execution:someone-elses-machine:run-1"
PREFIX = collector_prefix(EXECUTION)


# -- descriptions ----------------------------------------------------------------------------------
def test_descriptions_round_trip():
    assert parse_description(set_description("IR-2024-0602", "i-0abc1234")) == {
        "incident": "IR-2024-0602", "instance": "i-0abc1234", "kind": "source", "of": None, "volume": None,
        "first": True}
    text = copy_description("forensics-copy", "gd-abc", "i-0abc1234", "snap-0123abcd", "vol-0456ef")
    assert text == "gd-abc instance i-0abc1234 evidence forensics-copy of snap-0123abcd (vol-0456ef)"
    assert parse_description(text)["of"] == "snap-0123abcd"


def test_a_follow_up_is_marked_in_the_immutable_description():
    text = set_description("gd-2", "i-0abc1234", follow_up=True)
    assert text == "gd-2 instance i-0abc1234 evidence source, follow-up"
    assert parse_description(text)["first"] is False
    copy = copy_description("sharing-copy", "gd-2", "i-0abc1234", "snap-0f", "vol-0a", follow_up=True)
    assert copy.endswith("(vol-0a), follow-up") and parse_description(copy)["first"] is False


@pytest.mark.parametrize("text", [None, "", "IR-1 instance i-0abc evidence other", "Created by AWS Backup",
                                  "IR-1 instance i-0abc evidence source extra", "IR 1 instance i-0abc evidence source",
                                  "IR-1 instance i-0abc evidence source, follow-up, follow-up"])
def test_foreign_descriptions_do_not_parse(text):
    assert parse_description(text) is None


def test_collector_prefix_names_this_state_machine():
    assert PREFIX == "arn:aws:states:eu-west-1:123456789012:execution:ir-responder-containment:"
    assert collector_prefix("") is None and collector_prefix("unknown") is None



# -- retention ---------------------------------------------------------------------------------------------
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def snap(n: int, incident: str, *, kind: str = "source", instance: str = "i-0abc", minutes: int = 0,
         collected_by: str = EXECUTION, state: str = "completed", source: str | None = None,
         tag_incident: str | None = None, follow_up: bool = True) -> dict:
    """An evidence snapshot; a follow-up unless told otherwise (first collections never age out)."""
    description = (set_description(incident, instance, follow_up=follow_up) if kind == "source"
                   else copy_description(kind, incident, instance, "snap-0f", "vol-0a", follow_up=follow_up))
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
    assert sorted(s["SnapshotId"] for s in result["delete"]) == ["snap-0002", "snap-0003"]


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


# -- first collections and follow-ups ----------------------------------------------------------------------
def test_a_finding_flood_never_ages_out_the_first_collection():
    """IR-1 isolated the instance; IR-2..IR-9 are findings on the isolated box. 7 collections stay: IR-9 (current),
    IR-1 (first) and the five newest follow-ups."""
    snaps = [snap(1, "IR-1", minutes=1, follow_up=False)] + [snap(n, f"IR-{n}", minutes=n) for n in range(2, 10)]
    result = plan(snaps, current_incident="IR-9")
    assert result["kept"] == ["IR-9", "IR-8", "IR-7", "IR-6", "IR-5", "IR-4", "IR-1"]
    assert result["first"] == ["IR-1"]
    assert sorted(s["SnapshotId"] for s in result["delete"]) == ["snap-0002", "snap-0003"]


def test_every_first_collection_is_kept_even_beyond_the_limit():
    snaps = [snap(n, f"IR-{n}", minutes=n, follow_up=False) for n in range(1, 10)] + [snap(10, "IR-10", minutes=10)]
    result = plan(snaps, current_incident="IR-10")
    assert len(result["kept"]) == 10 and result["delete"] == []


def test_with_seven_first_collections_only_the_current_follow_up_is_kept():
    snaps = ([snap(n, f"IR-{n}", minutes=n, follow_up=False) for n in range(1, 8)]
             + [snap(n, f"IR-{n}", minutes=n) for n in range(8, 11)])
    result = plan(snaps, current_incident="IR-10")
    assert set(result["kept"]) == {f"IR-{n}" for n in range(1, 8)} | {"IR-10"}
    assert sorted(s["SnapshotId"] for s in result["delete"]) == ["snap-0008", "snap-0009"]


def test_a_collection_without_the_mark_counts_as_first():
    snaps = [snap(1, "IR-1", minutes=1)]
    snaps[0]["Description"] = set_description("IR-1", "i-0abc")  # written before follow-ups were marked
    snaps += [snap(n, f"IR-{n}", minutes=n) for n in range(2, 10)]
    assert "IR-1" in plan(snaps, current_incident="IR-9")["kept"]


def test_retagging_a_first_collection_does_not_make_it_a_follow_up():
    first = snap(1, "IR-1", minutes=1, follow_up=False)
    first["Tags"].append({"Key": "ir:follow-up", "Value": "true"})  # tags are not where the mark lives
    snaps = [first] + [snap(n, f"IR-{n}", minutes=n) for n in range(2, 10)]
    assert "IR-1" in plan(snaps, current_incident="IR-9")["kept"]


def test_locked_snapshots_are_never_deleted():
    snaps = [snap(n, f"IR-{n}", minutes=n) for n in range(1, 10)]
    result = plan(snaps, current_incident="IR-9", locked=["snap-0001"])
    assert result["aged"] == ["IR-2", "IR-1"]
    assert [s["SnapshotId"] for s in result["delete"]] == ["snap-0002"] and result["locked"] == ["snap-0001"]


# -- the collection interval -------------------------------------------------------------------------------
NOW = (T0 + timedelta(minutes=100)).timestamp()


def recent(snaps, **kw):
    args = dict(instance_id="i-0abc", current_incident="IR-9", prefix=PREFIX, now=NOW, interval_seconds=3600)
    args.update(kw)
    return recent_collection(snaps, **args)


def test_a_collection_within_the_interval_is_found():
    found = recent([snap(1, "IR-1", minutes=10, follow_up=False), snap(2, "IR-2", minutes=60)])
    assert found == {"incident": "IR-2", "ageSeconds": 40 * 60, "snapshotIds": ["snap-0002"]}


def test_older_collections_failed_ones_and_the_current_incident_do_not_count():
    assert recent([snap(1, "IR-1", minutes=10)]) is None                       # 90 min ago
    assert recent([snap(2, "IR-2", minutes=90, state="error")]) is None        # nothing usable was made
    assert recent([snap(3, "IR-9", minutes=99)]) is None                       # this incident's own (a replay)
    assert recent([snap(4, "IR-4", minutes=99, collected_by=OTHER_MACHINE)]) is None  # not ours

