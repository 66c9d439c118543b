"""The release's pure decisions (responder.release): the request, what containment changed, what to undo or
refuse, the outcome. No AWS."""
from __future__ import annotations

import json
import re

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
    ({"restoreConsoleAccess": True, "iamUsers": [], "instances": ["i-0123456789abcdef0"]},
     "release.restoreConsoleAccess"),  # console access is a user's
    ({"restoreConsoleAccess": "yes"}, "release.restoreConsoleAccess"),
    # roles and instances are released since issue 15's second part: bad names of them are still refused
    ({"roles": ["app role"]}, "release.roles[0]"),
    ({"instances": ["i-0123456789ABCDEF0"]}, "release.instances[0]"),  # upper case: not an instance id
    ({"instances": ["i-0123456789abcdef0\n"]}, "release.instances[0]"),
    ({"instances": [f"i-{n:017x}" for n in range(51)]}, "release.instances"),
    ({"restoreAutoScaling": True}, "release.restoreAutoScaling"),  # no instance named
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


# -- instances --------------------------------------------------------------------------------------------------
I = "i-0123456789abcdef0"
IARN = f"arn:aws:ec2:eu-west-1:444455556666:instance/{I}"
PROFILE = "arn:aws:iam::444455556666:instance-profile/app"


def isolation_result(**changes):
    return {"kind": "instance", "instanceId": I, "target": IARN, "status": "isolated",
            "metadata": {"interfaces": [
                {"networkInterfaceId": "eni-1", "vpcId": "vpc-1", "groups": ["sg-app"]},
                {"networkInterfaceId": "eni-2", "vpcId": "vpc-1", "groups": ["sg-admin", "sg-ops"]}],
                "instanceProfileArn": PROFILE},
            "networkAclEntries": [{"networkAclId": "acl-1", "ruleNumber": 1, "direction": "inbound",
                                   "cidr": "10.0.1.5/32"}],
            "preState": {"quarantineGroups": {"vpc-1": "sg-q"},
                         "targetGroups": [{"targetGroupArn": "tg-1", "targets": [{"Id": I, "Port": 8443}]}],
                         "autoScalingGroup": {"name": "web-asg", "lifecycleState": "InService"}}, **changes}


def isolation_entries(*pairs):
    return [{"task": "isolation", "subject": I, "status": "done", "step": step, "api": api, "target": target,
             "time": "2024-06-02T02:00:01.000Z"}  # every journal entry has its time
            for step, api, target in pairs]


ISOLATED = isolation_entries(
    ("network_isolation", "ec2:ModifyNetworkInterfaceAttribute", "eni-1"),
    ("network_isolation", "ec2:ModifyNetworkInterfaceAttribute", "eni-2"),
    ("connection_tracking", "ec2:ModifyNetworkInterfaceAttribute", "eni-1"),  # not a group move
    ("instance_profile", "ec2:ReplaceIamInstanceProfileAssociation", I),
    ("network_acl", "ec2:CreateNetworkAclEntry", "acl-1#1-in"),
    ("target_groups", "elasticloadbalancing:DeregisterTargets", "tg-1"),
    ("auto_scaling", "autoscaling:DetachInstances", I))


def now(**changes):
    state = {"instance": {"InstanceId": I, "State": {"Name": "running"}, "NetworkInterfaces": [
        {"NetworkInterfaceId": "eni-1", "Groups": [{"GroupId": "sg-q"}]},
        {"NetworkInterfaceId": "eni-2", "Groups": [{"GroupId": "sg-q"}]}]},
        "associations": [{"AssociationId": "a-1", "IamInstanceProfile": {
            "Arn": "arn:aws:iam::444455556666:instance-profile/ir-quarantine-deny-all"}}],
        "profile_exists": True,
        "acls": {"acl-1": {"Entries": [{"RuleNumber": 1, "Egress": False, "RuleAction": "deny", "Protocol": "-1",
                                        "CidrBlock": "10.0.1.5/32"}]}},
        "classic": {}, "target_groups": {"tg-1": []}, "membership": None,
        "group": {"DesiredCapacity": 1, "MaxSize": 3, "CreatedTime": "2023-01-05T10:00:00Z"},
        "deny_all_profile": "ir-quarantine-deny-all",
        "restore_autoscaling": True, "released": False}
    state.update(changes)
    return state


def iplan(result=None, entries=ISOLATED, **changes):
    return release.instance_plan(release.instance_changes(result or isolation_result(), entries), **now(**changes))


def test_an_isolated_instance_is_restored_step_by_step_in_a_safe_order():
    conflicts, steps, _ = iplan()
    assert conflicts == []
    assert steps == [("profile", "a-1", PROFILE), ("acl", "acl-1", 1, False), ("groups", "eni-1", ["sg-app"]),
                     ("groups", "eni-2", ["sg-admin", "sg-ops"]), ("targets", "tg-1", [{"Id": I, "Port": 8443}]),
                     ("attach", "web-asg")]


def test_auto_scaling_only_when_asked():
    conflicts, steps, notes = iplan(restore_autoscaling=False)
    assert conflicts == [] and ("attach", "web-asg") not in steps and "restoreAutoScaling" in notes[0]


@pytest.mark.parametrize("changes, says", [
    ({"instance": None}, "no longer exists"),
    ({"instance": {"InstanceId": I, "State": {"Name": "terminated"}}}, "terminated"),
    ({"instance": {"InstanceId": I, "State": {"Name": "running"}, "NetworkInterfaces": [
        {"NetworkInterfaceId": "eni-1", "Groups": [{"GroupId": "sg-app"}]},
        {"NetworkInterfaceId": "eni-2", "Groups": [{"GroupId": "sg-q"}]}]}}, "eni-1 is in sg-app"),
    ({"instance": {"InstanceId": I, "State": {"Name": "running"}, "NetworkInterfaces": [
        {"NetworkInterfaceId": "eni-1", "Groups": [{"GroupId": "sg-q"}]}]}}, "removed eni-2"),
    ({"associations": [{"AssociationId": "a-1", "IamInstanceProfile": {"Arn": PROFILE + "-other"}}]},
     "not the deny-all profile"),
    ({"profile_exists": False}, "no longer exists"),
    ({"acls": {"acl-1": {"Entries": [{"RuleNumber": 1, "Egress": False, "RuleAction": "allow", "Protocol": "-1",
                                      "CidrBlock": "10.0.1.5/32"}]}}}, "acl-1 #1 inbound"),
    ({"acls": {}}, "was removed"),
    ({"target_groups": {"tg-1": None}}, "tg-1 no longer exists"),
    ({"membership": {"AutoScalingGroupName": "other-asg"}}, "other-asg"),
    ({"group": None}, "web-asg no longer exists"),
    ({"group": {"DesiredCapacity": 3, "MaxSize": 3}}, "MaxSize"),
])
def test_a_change_since_containment_is_a_conflict_naming_it(changes, says):
    conflicts, _, _ = iplan(**changes)
    assert conflicts and any(says in c for c in conflicts), conflicts


def test_a_pre_state_captured_after_the_isolation_is_not_a_pre_state():
    late = isolation_result()
    late["metadata"]["interfaces"][0]["groups"] = ["sg-q"]  # a re-run captured the quarantined interface
    conflicts, _, _ = iplan(result=late)
    assert any("captured after the isolation" in c for c in conflicts)
    conflicts, _, _ = iplan(result=dict(isolation_result(), preState=None))
    assert any("quarantine group" in c for c in conflicts) and any("ports" in c for c in conflicts)
    conflicts, _, _ = iplan(result=dict(isolation_result(), truncated="20000 bytes"))
    assert any("truncated" in c for c in conflicts)


def test_a_second_release_finds_nothing_to_undo():
    restored = now()
    restored["instance"]["NetworkInterfaces"] = [
        {"NetworkInterfaceId": "eni-1", "Groups": [{"GroupId": "sg-app"}]},
        {"NetworkInterfaceId": "eni-2", "Groups": [{"GroupId": "sg-ops"}, {"GroupId": "sg-admin"}]}]
    restored.update(associations=[{"AssociationId": "a-2", "IamInstanceProfile": {"Arn": PROFILE}}], acls={"acl-1": {
        "Entries": []}}, target_groups={"tg-1": [{"Id": I, "Port": 8443}]},
        membership={"AutoScalingGroupName": "web-asg"}, released=True)
    conflicts, steps, _ = release.instance_plan(release.instance_changes(isolation_result(), ISOLATED), **restored)
    assert conflicts == [] and steps == []
    # the same state without an earlier release: someone undid it by hand - refused, nothing is assumed
    conflicts, _, _ = release.instance_plan(release.instance_changes(isolation_result(), ISOLATED),
                                            **dict(restored, released=False))
    assert conflicts


def test_only_instances_and_roles_this_incident_contained_are_accepted():
    role = "arn:aws:iam::444455556666:role/app"
    record = {"accountId": "444455556666", "region": "eu-west-1",
              "results": {f"isolation:{I}": isolation_result(),
                          f"identity:{role}": {"type": "AssumedRole", "name": "app", "target": role}}}
    incident = release.with_record(normalize(request(iamUsers=[], instances=[I], roles=["app"])), record)
    assert incident["release"]["instances"] == [I]
    with pytest.raises(InvalidInput) as exc:
        release.with_record(normalize(request(iamUsers=[], instances=[I, "i-0123456789abcdef1"])), record)
    assert exc.value.field == "release.instances[1]"
    with pytest.raises(InvalidInput) as exc:
        release.with_record(normalize(request(iamUsers=[], roles=["other"])), record)
    assert exc.value.field == "release.roles[0]"


class _Recorder:
    """A fake adapter: every method call is recorded through the journal (as the real adapters do: Journal.call
    on a fake client would need botocore metadata, so the fake records entries itself)."""

    def __init__(self, journal, answers, calls):
        self._j, self._answers, self._calls = journal, answers, calls

    def __getattr__(self, name):
        def method(*args, **kwargs):
            if name in self._answers:
                return self._answers[name](*args) if callable(self._answers[name]) else self._answers[name]
            self._calls.append((name, args))
            status = "planned" if self._j.dry_run else "done"
            self._j.entries.append({"status": status, "api": name, "target": str(args[0]), "step": self._j._step})
            return {"ARN": "arn:aws:secretsmanager:eu-west-1:1:secret:ir-responder/release/x"} if name == "store" else None
        return method


def test_one_request_releases_a_user_with_console_access_an_instance_and_a_role_and_the_password_stays_in_the_secret():
    from responder.journal import Journal

    user_arn, role_arn = ARN, "arn:aws:iam::444455556666:role/app"
    record = {"accountId": "444455556666", "region": "eu-west-1", "timeline": ISOLATED + [
        {"task": "identity", "subject": user_arn, "status": "done", "api": "iam:DeleteLoginProfile", "target": user_arn,
         "step": "remove_console_access"}],
        "results": {f"isolation:{I}": isolation_result(),
                    f"identity:{user_arn}": {"type": "IAMUser", "name": "ci", "target": user_arn, "userId": "AIDA1",
                                             "loginProfile": {"existed": True}},
                    f"identity:{role_arn}": {"type": "AssumedRole", "name": "app", "target": role_arn}}}
    incident = release.with_record(normalize(request(instances=[I], roles=["app"], restoreConsoleAccess=True,
                                                     restoreAutoScaling=True)), record)
    state = now()
    calls: list = []
    iam_answers = {"get_user": {"UserId": "AIDA1"}, "access_keys": [], "attached_user_policies": set(),
                   "login_profile": None}
    instance_answers = {"describe_instance": state["instance"], "profile_associations": state["associations"],
                        "instance_profile": {"Arn": PROFILE, "CreateDate": "2023-01-05T10:00:00Z"},
                        "acls": state["acls"],
                        "registered": [], "membership": None, "group": state["group"], "instances": []}
    stored: list = []

    def secrets_for(journal):
        fake = _Recorder(journal, {}, calls)
        original = fake.store
        fake_store = lambda name, value, **kw: stored.append(value) or original(name)  # noqa: E731
        return type("S", (), {"store": staticmethod(fake_store)})()

    class A:
        def __init__(self, journal):
            self.ec2 = self.iam = self.classic = self.target_groups = self.autoscaling = _Recorder(
                journal, instance_answers, calls)

    result = release.release(incident, record=record, iam=lambda j: _Recorder(j, iam_answers, calls),
                             quarantine_policy_arn=Q, denies_all=denies_all, journal=Journal,
                             adapters=A, deny_all_profile="ir-quarantine-deny-all", secrets=secrets_for)
    assert result["status"] == "released", result
    by = {t["name"]: t for t in result["targets"]}
    assert by["ci"]["status"] == "released" and by["ci"]["consoleAccess"].startswith("restored")
    assert by[I]["status"] == "released" and by["app"]["status"] == "nothing_to_release"
    assert [c[0] for c in calls] == ["store", "create_login_profile", "restore_profile", "delete_acl_entry",
                                     "set_interface_groups", "set_interface_groups", "register", "attach"]
    password = json.loads(stored[0])["password"]
    assert len(password) == release.PASSWORD_LENGTH
    assert password not in json.dumps(result) and password not in json.dumps(release.summary(result))
    assert ("create_login_profile", ("ci", password)) in calls  # the password the secret holds is the one set


def test_new_passwords_have_every_character_class_and_never_repeat():
    import string

    seen = {release.new_password() for _ in range(50)}
    assert len(seen) == 50
    for p in seen:
        assert len(p) == 32 and set(p) <= set(string.ascii_letters + string.digits + release.PASSWORD_SYMBOLS)
        assert any(c.isupper() for c in p) and any(c.islower() for c in p) and any(c.isdigit() for c in p)
        assert any(c in release.PASSWORD_SYMBOLS for c in p)


def test_the_pre_state_is_the_earliest_capture_and_what_every_attempt_removed():
    """A second attempt's result captured the isolated instance; the timeline's notes keep the first capture and
    what each attempt removed (the first record of each item stands); a record without notes reads the result."""
    arn = "arn:aws:ec2:eu-west-1:444455556666:instance/i-1"
    iso = {"interfaces": [{"networkInterfaceId": "eni-1", "vpcId": "vpc-1", "groups": ["sg-quarantine"]}],
           "instanceProfileArn": "arn:aws:iam::444455556666:instance-profile/ir-quarantine-deny-all"}
    result = {"target": arn, "status": "already_isolated", "metadata": dict(iso, volumes=["vol-1"]),
              "preState": {"quarantineGroups": {"vpc-1": "sg-quarantine"}}, "networkAclEntries": [],
              "truncated": "metadata"}
    first = {"interfaces": [{"networkInterfaceId": "eni-1", "vpcId": "vpc-1", "groups": ["sg-web", "sg-admin"]}],
             "instanceProfileArn": "arn:aws:iam::444455556666:instance-profile/web"}
    tg = {"targetGroupArn": "arn:tg/web", "targets": [{"Id": "i-1", "Port": 8443}]}
    acl = {"networkAclId": "acl-1", "ruleNumber": 90, "direction": "inbound", "cidr": "10.0.1.5/32"}
    notes = [{"step": "capture_metadata", "status": "recorded", "preState": first},
             {"step": "capture_metadata", "status": "recorded", "networkAclEntries": [acl],
              "removed": {"quarantineGroups": {"vpc-1": "sg-quarantine"}, "targetGroups": [tg]}},
             {"step": "capture_metadata", "status": "recorded", "preState": iso},  # the second attempt
             {"step": "capture_metadata", "status": "recorded", "networkAclEntries": [dict(acl, cidr="0.0.0.0/0")],
              "removed": {"quarantineGroups": {"vpc-1": "sg-other"}, "classicLoadBalancers": ["web"],
                          "targetGroups": [dict(tg, targets=[])], "autoScalingGroup": {"name": "web-asg"}}},
             {"step": "capture_metadata", "status": "done", "preState": iso}]  # not a note
    merged = release.recorded_pre_state(result, notes)
    assert merged["metadata"]["interfaces"] == first["interfaces"] and merged["metadata"]["volumes"] == ["vol-1"]
    assert merged["metadata"]["instanceProfileArn"].endswith("/web") and "truncated" not in merged
    assert merged["preState"] == {"quarantineGroups": {"vpc-1": "sg-quarantine"}, "targetGroups": [tg],
                                  "classicLoadBalancers": ["web"], "autoScalingGroup": {"name": "web-asg"}}
    assert merged["networkAclEntries"] == [acl]
    assert release.recorded_pre_state(result, notes[-1:]) is result  # written before the notes: the result alone
    assert result["metadata"]["interfaces"] == iso["interfaces"]  # the record's result is not changed


def test_each_user_has_its_own_secret_whatever_its_name():
    """IAM user names may hold a comma, Secrets Manager names may not: `a,b` and `a-b` (both valid IAM names, the
    attacker may have created either) never share a secret, and every name stays a valid secret name."""
    names = {release.secret_name("IR-1", "444455556666", u) for u in ("a,b", "a-b", "a,,b", "a-,b", "+=.@_-")}
    assert len(names) == 5
    assert all(re.fullmatch(r"[A-Za-z0-9/_+=.@-]{1,512}", n) for n in names)
    assert release.secret_name("IR-1", "444455556666", "a-b").endswith("/444455556666/a-b")


def test_a_profile_made_after_the_isolation_first_saw_the_instance_is_not_the_original():
    """GetInstanceProfile's CreateDate against the isolation's first entry: a profile deleted and made again under
    the original's name (same ARN, maybe another role) is newer; an unknown date fails closed."""
    from datetime import datetime, timezone

    entries = [{"time": "2024-06-02T02:00:05.000Z"}, {"time": "2024-06-02T02:00:01.000Z"}, {"no": "time"}]
    assert release.made_since(datetime(2024, 6, 2, 2, 0, 2, tzinfo=timezone.utc), entries)
    assert not release.made_since(datetime(2023, 1, 5, tzinfo=timezone.utc), entries)
    assert not release.made_since("2024-06-02T02:00:00Z", entries)
    assert release.made_since(None, entries) and release.made_since("garbage", entries)
    assert release.made_since(datetime(2023, 1, 5), [])  # no entry to compare with: fail closed
