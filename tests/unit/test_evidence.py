"""Evidence chain: the pure decisions (wait schedule and its history budget, gates) and the phase machine's early
exits with adapters that must not be called. Descriptions and retention: test_evidence_retention.py."""
from __future__ import annotations

import pytest

from responder import evidence
from responder.adapters import Adapters
from responder.evidence import collect, isolation_gate, wait_seconds
from responder.settings import Settings

EXECUTION = "arn:aws:states:eu-west-1:123456789012:execution:ir-responder-containment:run-1"
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


# -- gates --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("isolation, skipped", [
    ({"status": "isolated"}, False), ({"status": "already_isolated"}, False), ({"status": "failed"}, False),
    ({"Error": "States.TaskFailed", "Cause": "boom"}, False), ({"status": "planned"}, False), (None, False),
    ({"status": "protected"}, True), ({"status": "protection_unverified"}, True), ({"status": "not_found"}, True),
])
def test_evidence_follows_isolation_unless_the_instance_is_protected_or_gone(isolation, skipped):
    assert bool(isolation_gate(isolation)) is skipped


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
