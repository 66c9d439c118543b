"""Credentials that expire in the middle of an invocation, through the shipped state machine: the responder's
assumed-role sessions are refreshed before any call is signed with an expired token, so the call that comes after
the expiry succeeds at once - no ExpiredToken, no retried task. Expiry as AWS enforces it: state_machines/gaps_sts.py;
the clock moved by local.time_passes."""
from __future__ import annotations

from state_machines import local
from tests.worlds.evidence import dep, evidence_of, fresh_hooks, manual_request, build_instance  # noqa: F401
from tests.worlds.reliability import task_failures


def test_sessions_that_expire_during_the_block_listing_are_refreshed_and_the_evidence_completes(dep):
    inst = build_instance(dep)
    # an hour and a bit passes right after the first ListSnapshotBlocks page: every session assumed so far
    # (member and forensics) has expired when the next call is made
    with local.time_passes(3700, after="ebs:ListSnapshotBlocks"):
        run = local.execute(manual_request(inst.instance_id, "IR-WF-EXPIRY"), dep)
        assert not local._JUMPS  # the clock did move mid-invocation
    assert task_failures(run) == []  # no task was retried: nothing was signed with an expired token
    evidence = evidence_of(run, inst.instance_id)
    assert evidence["status"] == "collected" and evidence["done"] is True, evidence.get("message")
    assert all(i["forensicsCopy"].get("digest") for i in evidence["snapshots"])
    lists = [i for i, c in enumerate(run.aws_calls) if c["api"] == "ebs:ListSnapshotBlocks"]
    assumed_after = [c for c in run.aws_calls[lists[0] + 1:] if c["api"] == "sts:AssumeRole"]
    assert len(assumed_after) >= 2  # member and forensics sessions renewed, once each
    assert len(assumed_after) <= 2 * 2  # and not on every call
