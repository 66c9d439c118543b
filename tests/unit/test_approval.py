"""Approval decisions without AWS (responder.approval, responder.levels): the policy's validation names the key,
the level of an incident, the refusal of decided, expired and stale requests."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from responder import approval, levels
from responder.levels import LevelsError

NOW = datetime(2026, 12, 2, 4, 0, tzinfo=timezone.utc)
ACCOUNT = "111122223333"
POLICY = {"accountGroups": {"prod": [ACCOUNT]},
          "rules": [{"accounts": ["prod"], "findingTypes": ["UnauthorizedAccess:IAMUser/*"], "minSeverity": 7,
                     "level": "approval", "approvalTimeoutSeconds": 900, "onTimeout": "contain"},
                    {"accounts": ["*"], "findingTypes": ["Recon:*"], "level": "observe"}]}


def incident(**changes):
    return {"incidentId": "gd-1", "origin": "guardduty", "accountId": ACCOUNT, "region": "eu-west-1",
            "findingType": "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS", "severity": 8.0,
            "identities": [{"type": "IAMUser", "name": "u"}], "instances": [], **changes}


@pytest.mark.parametrize("policy, key", [
    ({"default": "maybe"}, "containmentLevels.default"),
    ({"rules": [{"level": "approval", "accounts": ["staging"]}]}, "containmentLevels.rules[0].accounts[0]"),
    ({"rules": [{"accounts": ["*"]}]}, "containmentLevels.rules[0].level"),
    ({"rules": [{"level": "approval", "minSeverity": 8, "maxSeverity": 4}]}, "containmentLevels.rules[0].minSeverity"),
    ({"rules": [{"level": "approval", "minSeverity": "high"}]}, "containmentLevels.rules[0].minSeverity"),
    ({"rules": [{"level": "approval", "approvalTimeoutSeconds": 0}]}, "containmentLevels.rules[0].approvalTimeoutSeconds"),
    ({"onTimeout": "retry"}, "containmentLevels.onTimeout"),
    ({"accountGroups": {"prod": ["12345"]}}, "containmentLevels.accountGroups.prod[0]"),
    ({"rules": [{"level": "approval", "severity": 7}]}, "containmentLevels.rules[0].severity"),
    ({"evidenceBeforeApproval": "yes"}, "containmentLevels.evidenceBeforeApproval"),
    ("not json", "containmentLevels"),
])
def test_a_bad_policy_names_its_key(policy, key):
    with pytest.raises(LevelsError) as err:
        levels.parse(policy)
    assert err.value.key == key


def test_the_first_matching_rule_decides():
    policy = levels.parse(POLICY)
    assert levels.decide(policy, incident())["level"] == "approval"
    assert levels.decide(policy, incident())["onTimeout"] == "contain"
    assert levels.decide(policy, incident(severity=5.0))["level"] == "automatic"  # below the band
    assert levels.decide(policy, incident(accountId="999999999999"))["level"] == "automatic"
    assert levels.decide(policy, incident(findingType="Recon:IAMUser/MaliciousIPCaller"))["level"] == "observe"
    assert levels.decide(policy, incident(origin="manual"))["level"] == "automatic"  # a person asked
    assert levels.decide(policy, incident(origin="manual"), requested="approval")["level"] == "approval"
    assert levels.decide(levels.parse(None), incident())["level"] == "automatic"


def test_an_unusable_policy_fails_closed_to_approval():
    from responder.settings import Settings

    config = Settings.from_env({"IR_CONTAINMENT_LEVELS": '{"default": "sometimes"}', "IR_PROTECTED_PRINCIPALS": ""})
    assert "containmentLevels.default" in config.containment_levels_error
    from responder.triage import containment

    assert containment(incident(), config)["level"] == "approval"
    assert containment(incident(), config)["onTimeout"] == "stand_down"


class Table:
    def __init__(self, item):
        self.item, self.updates = item, []

    def get(self, incident_id):
        return self.item

    def update(self, incident_id, expression, values, *, names=None, condition=None):
        self.updates.append((expression, values, condition))
        return True


class Sfn:
    def __init__(self, code=None):
        self.code, self.sent = code, []

    def send_task_success(self, **kwargs):
        if self.code:
            raise ClientError({"Error": {"Code": self.code, "Message": "x"}}, "SendTaskSuccess")
        self.sent.append(kwargs)


def pending(**changes):
    return {"incidentId": "gd-1", "approval": {"status": "pending", "taskToken": "tok", "deadline": "2026-12-02T05:00:00Z",
                                               "onTimeout": "stand_down", **changes}}


def test_an_answer_sends_the_decision_with_who_when_why_and_clears_the_token():
    table, sfn = Table(pending()), Sfn()
    sent = approval.answer(table=table, sfn=sfn, caller_arn="arn:aws:iam::1:user/a", incident_id="gd-1",
                           decision="approve", reason="real", now=NOW)
    assert sent == {"decision": "approve", "by": "arn:aws:iam::1:user/a", "at": "2026-12-02T04:00:00Z", "reason": "real"}
    assert sfn.sent[0]["taskToken"] == "tok"
    expression, values, condition = table.updates[0]
    assert "REMOVE #a.#t" in expression and "approved" in values.values() and ":tok" in condition


@pytest.mark.parametrize("item, match", [
    (None, "no incident gd-1"),
    ({"incidentId": "gd-1"}, "has no approval request"),
    (pending(status="approved", taskToken=None, by="arn:x"), "already approved by arn:x"),
    (pending(deadline="2026-12-02T03:59:59Z"), "deadline .* has passed"),
])
def test_a_request_that_cannot_be_answered_is_refused_and_nothing_is_sent(item, match):
    sfn = Sfn()
    with pytest.raises(approval.ApprovalRefused, match=match):
        approval.answer(table=Table(item), sfn=sfn, caller_arn="a", incident_id="gd-1", decision="deny",
                        reason="r", now=NOW)
    assert sfn.sent == []


@pytest.mark.parametrize("code", ["TaskTimedOut", "TaskDoesNotExist", "InvalidToken"])
def test_a_token_step_functions_refuses_is_stale(code):
    table = Table(pending())
    with pytest.raises(approval.ApprovalRefused, match=f"the token is stale: .*{code}"):
        approval.answer(table=table, sfn=Sfn(code), caller_arn="a", incident_id="gd-1", decision="approve",
                        reason="r", now=NOW)
    assert "stale" in table.updates[0][1].values()


def test_a_reason_is_required():
    with pytest.raises(approval.ApprovalRefused, match="--reason is required"):
        approval.answer(table=Table(pending()), sfn=Sfn(), caller_arn="a", incident_id="gd-1", decision="approve",
                        reason="  ", now=NOW)


def test_the_deadline_counts_from_when_the_state_was_entered():
    asked = approval.request(incident(containment={"approvalTimeoutSeconds": 900, "onTimeout": "contain"}),
                             token="t", execution_id="e", now=NOW + timedelta(seconds=5),
                             entered_at="2026-12-02T04:00:00.123Z")
    assert asked["deadline"] == "2026-12-02T04:15:00Z" and asked["status"] == "pending"


def test_the_notification_says_exactly_how_to_answer():
    asked = approval.request(incident(containment={"approvalTimeoutSeconds": 60, "onTimeout": "stand_down"}),
                             token="TOKEN", execution_id="e", now=NOW)
    subject, text, attributes = approval.notification(incident(), asked)
    assert subject.startswith("IR APPROVAL REQUIRED: user/u in 111122223333")
    assert 'python -m cli approve gd-1 --reason \\"<why>\\"' in text
    assert "aws stepfunctions send-task-success --task-token 'TOKEN'" in text
    assert attributes["priority"] == "high"


def test_what_the_record_keeps_of_an_answer():
    assert approval.recorded({"decision": "approve", "by": "a", "at": "t", "reason": "r", "extra": 1}) == {
        "decision": "approve", "by": "a", "at": "t", "reason": "r"}
    assert approval.recorded({"decision": "yes"})["decision"] == "invalid"
