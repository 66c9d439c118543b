"""The release's pure decisions (responder.release): the request, what containment changed, what to undo or
refuse, the outcome. No AWS."""
from __future__ import annotations

import pytest

from responder import release
from responder.errors import InvalidInput
from responder.identity import denies_all
from responder.triage import normalize

Q = "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV2"
ARN = "arn:aws:iam::444455556666:user/ci"


def request(**changes):
    return {"release": {"incidentId": "gd-1", "reason": "false positive", "iamUsers": ["ci"], **changes}}


def test_a_release_request_becomes_a_release_incident_and_changes_nothing_by_itself():
    incident = normalize(request(dryRun=True))
    assert incident["disposition"] == "release" and incident["origin"] == "release" and incident["dryRun"] is True
    assert incident["release"]["iamUsers"] == ["ci"] and incident["identities"] == [] == incident["instances"]


@pytest.mark.parametrize("changes, field", [
    ({"iamUsers": ["ci\n"]}, "release.iamUsers[0]"),  # a trailing newline
    ({"iamUsers": ["сi"]}, "release.iamUsers[0]"),  # a Cyrillic look-alike
    ({"iamUsers": [f"u{i}" for i in range(51)]}, "release.iamUsers"),  # a flood of targets
    ({"reason": "x" * 1025}, "release.reason"),
    ({"incidentId": "../other"}, "release.incidentId"),
    ({"restoreConsoleAccess": True}, "release.restoreConsoleAccess"),
    ({"roles": ["app"]}, "release.roles"),
    ({"instances": ["i-0123456789abcdef0"]}, "release.instances"),
    ({"level": "automatic"}, "release.level"),
])
def test_bad_requests_name_the_field(changes, field):
    with pytest.raises(InvalidInput) as exc:
        normalize(request(**changes))
    assert exc.value.field == field


def test_only_users_this_incident_contained_are_accepted():
    record = {"accountId": "444455556666", "region": "eu-west-1",
              "results": {f"identity:{ARN}": {"type": "IAMUser", "name": "ci", "target": ARN}}}
    incident = release.with_record(normalize(request()), record)
    assert incident["accountId"] == "444455556666" and incident["region"] == "eu-west-1"
    with pytest.raises(InvalidInput, match="was not contained") as exc:
        release.with_record(normalize(request(iamUsers=["ci", "bob"])), record)
    assert exc.value.field == "release.iamUsers[1]"
    with pytest.raises(InvalidInput, match="no incident"):
        release.with_record(normalize(request()), None)


def entries(*pairs):
    return [{"task": "identity", "subject": ARN, "status": "done", "api": api, "target": target, "step": step}
            for api, target, step in pairs]


def test_what_containment_changed_comes_from_its_done_entries_only():
    found = entries(("iam:AttachUserPolicy", ARN, "attach_quarantine_policy"),
                    ("iam:UpdateAccessKey", "AKIA1", "deactivate_access_keys"))
    found.append({"task": "identity", "subject": ARN, "status": "failed", "api": "iam:UpdateAccessKey",
                  "target": "AKIA2"})
    changes = release.user_changes({}, found, Q)
    assert changes == {"quarantinePolicy": Q, "keys": ["AKIA1"], "denyAll": False, "loginProfile": None}


def plan(changes, *, user=None, keys=None, attached=(), deny_all=None, released=False, user_id="AIDA1"):
    return release.user_plan(changes, user={"UserId": "AIDA1"} if user is None else user, user_id=user_id,
                             attached=set(attached), keys=keys or {}, deny_all=deny_all, denies_all=denies_all,
                             released=released)


CHANGED = {"quarantinePolicy": Q, "keys": ["AKIA1"], "denyAll": False, "loginProfile": None}


def test_undo_exactly_what_containment_changed():
    assert plan(CHANGED, attached={Q, "arn:other"}, keys={"AKIA1": "Inactive", "AKIA2": "Inactive"}) == (
        [], [("detach", Q), ("activate", "AKIA1")])


@pytest.mark.parametrize("kw, why", [
    ({"keys": {"AKIA1": "Active"}, "attached": {Q}}, "reactivated"),
    ({"keys": {}, "attached": {Q}}, "deleted"),
    ({"keys": {"AKIA1": "Inactive"}, "attached": set()}, "detached"),
    ({"user": {"UserId": "AIDA2"}}, "recreated"),
])
def test_a_change_since_containment_is_a_conflict(kw, why):
    conflicts, _ = plan(CHANGED, **kw)
    assert conflicts and why in conflicts[0]


def test_after_a_release_the_same_state_is_no_conflict_and_nothing_to_do():
    assert plan(CHANGED, keys={"AKIA1": "Active"}, released=True) == ([], [])


def test_a_rewritten_deny_all_is_a_conflict_never_deleted():
    changes = dict(CHANGED, quarantinePolicy=None, keys=[], denyAll=True)
    allow = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    conflicts, steps = plan(changes, deny_all=allow)
    assert conflicts and not steps
    _, steps = plan(changes, deny_all={"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]})
    assert steps == [("delete_inline", "ir-quarantine-deny-all")]


def test_outcomes():
    def state(status):
        return {"incident": {"incidentId": "gd-1", "disposition": "release"},
                "release": {"summary": {"status": status, "targets": [
                    {"target": ARN, "status": status, "conflicts": ["access key AKIA1 was deleted"]}]}}}

    assert release.outcome(state("released"))["outcome"] == "released"
    refused = release.outcome(state("refused"))
    assert refused["fail"] and refused["error"] == "ReleaseRefused" and ARN in refused["cause"]
    assert release.outcome({"incident": {"disposition": "release"}, "failure": {"task": "release", "error": "X"}})[
        "error"] == "ReleaseFailed"
