"""Guards on the shipped state machine: every Task says what it does, is bounded in time, retries transient
errors and catches the rest (nothing ends an execution without Finalize recording it); every Task and Pass keeps
the state bounded (docs/ARCHITECTURE.md, "Payload bound")."""
from __future__ import annotations

import json
from pathlib import Path

ASL = Path(__file__).resolve().parents[2] / "state_machines" / "containment.asl.json"


def states(definition: dict) -> dict[str, dict]:
    found = {}
    for name, state in definition["States"].items():
        found[name] = state
        for branch in state.get("Branches", []):
            found.update(states(branch))
        if "ItemProcessor" in state:
            found.update(states(state["ItemProcessor"]))
    return found


def tasks() -> dict[str, dict]:
    return {n: s for n, s in states(json.loads(ASL.read_text())).items() if s["Type"] == "Task"}


def test_every_task_has_comment_timeout_retry_and_catch():
    assert tasks()
    for name, task in tasks().items():
        assert task.get("Comment"), name
        if task.get("Resource", "").endswith(".waitForTaskToken"):  # a person's deadline, from the containment level
            assert task.get("TimeoutSecondsPath") == "$.incident.containment.approvalTimeoutSeconds", name
        else:
            assert isinstance(task.get("TimeoutSeconds"), int) and task["TimeoutSeconds"] > 0, name
        assert task.get("Retry") and "TransientAwsError" in task["Retry"][0]["ErrorEquals"], name
        assert task.get("Catch") and task["Catch"][-1]["ErrorEquals"] == ["States.ALL"], name


def test_every_task_selects_its_result():
    for name, task in tasks().items():
        # Finalize's result is the output itself; AwaitApproval's is a person's answer, whose fields may be missing
        # (a ResultSelector path that is missing raises States.Runtime, which no Catch handles): responder.approval
        # reads it defensively, and ApprovalDecision contains only on an explicit "approve"
        assert "ResultSelector" in task or name in ("Finalize", "AwaitApproval"), name
        assert "ResultPath" in task, name


def test_every_catch_of_a_task_reaches_the_one_failure_slot():
    every = states(json.loads(ASL.read_text()))
    for name, task in tasks().items():
        for catch in task["Catch"]:
            target = every[catch["Next"]]
            if catch["ErrorEquals"] == ["States.Timeout"] and task["Resource"].endswith(".waitForTaskToken"):
                # nobody answered in time: not a failure but the level's default (onTimeout), recorded as the answer
                assert target["Type"] == "Pass" and target["ResultPath"] == "$.incident.approval", (name, catch)
                assert target["Parameters"]["decision"] == "timed_out", (name, catch)
            elif target["Type"] == "Pass":  # a Pass turns Step Functions' {Error, Cause} into the Failure shape
                text = json.dumps(target["Parameters"])
                assert '"failure"' in text and '"error.$"' in text and '"cause.$"' in text, (name, catch["Next"])
            else:
                assert target["Type"] == "Fail", (name, catch["Next"])
