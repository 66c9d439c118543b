"""Identity containment the attacker cannot dodge (issue 10), through the shipped state machine with the AWS state
read back. The attacker's own calls are made with the attacker's credentials in the in-memory AWS, so the CloudTrail
history the responder reads is the one those calls made."""
from __future__ import annotations

import calendar
import json
import time
import uuid

import boto3
import pytest

from state_machines import local
from tests.worlds.deployment import deployment
from tests.worlds.evidence import identity_detail
from tests.worlds.operations import Inbox, configured, record, summary
from tests.worlds.workflow import access_key_event, backdate_cloudtrail, iam_state, republished

MEMBER, OTHER, FORENSICS, REGION = "444455556666", "777788889999", "999988887777", "eu-west-1"
QUARANTINE = "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV2"


dep = deployment(member_account=[MEMBER, OTHER], forensics_account=FORENSICS, region=REGION)


@pytest.fixture(scope="module")
def inbox(dep):
    return Inbox(dep)


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def user(dep, name=None, *, keys=1, account=MEMBER, tags=None):
    """A user and its keys (with secrets: the attacker holds them)."""
    iam = dep.client("iam", account)
    name = name or uid("user")
    iam.create_user(UserName=name, Tags=tags or [])
    return name, [iam.create_access_key(UserName=name)["AccessKey"] for _ in range(keys)]


def as_key(key: dict, service: str = "iam"):
    """A client acting with a stolen long-term key (the attacker's own calls)."""
    return boto3.client(service, region_name=REGION, aws_access_key_id=key["AccessKeyId"],
                        aws_secret_access_key=key["SecretAccessKey"])


def role(dep, name=None, *, account=MEMBER, trust_account=None, tags=None, path="/"):
    principal = {"AWS": f"arn:aws:iam::{trust_account}:root"} if trust_account else {"Service": "ec2.amazonaws.com"}
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": principal,
                                                     "Action": "sts:AssumeRole"}]}
    name = name or uid("app")
    return dep.client("iam", account).create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=json.dumps(trust),
                                                  Tags=tags or [])["Role"]


def user_finding(name, key_id, principal=None):
    ev = access_key_event(account=MEMBER, region=REGION, user_type="IAMUser", name=name, key=key_id)
    if principal:
        ev["detail"]["resource"]["accessKeyDetails"]["principalId"] = principal
    return ev


def role_finding(name, key_id, principal):
    ev = access_key_event(account=MEMBER, region=REGION, user_type="AssumedRole", name=name, key=key_id)
    ev["detail"]["resource"]["accessKeyDetails"]["principalId"] = principal
    return ev


def keys_of(dep, name, account=MEMBER):
    return {k["AccessKeyId"]: k["Status"] for k in dep.client("iam", account).list_access_keys(
        UserName=name)["AccessKeyMetadata"]}


def attached(dep, name, account=MEMBER):
    return [p["PolicyArn"] for p in dep.client("iam", account).list_attached_user_policies(
        UserName=name)["AttachedPolicies"]]


def inline(dep, name, account=MEMBER, kind="user"):
    iam = dep.client("iam", account)
    if kind == "user":
        return iam.list_user_policies(UserName=name)["PolicyNames"]
    return iam.list_role_policies(RoleName=name)["PolicyNames"]


def replay(dep, run, *, users=(), roles=()):
    """A person re-runs the contained incident's targets (manual request, same incident): the cut-off stays, so a
    second run of every step reads and changes nothing."""
    return local.execute({"manual": {"accountId": MEMBER, "region": REGION, "reason": "second run",
                                     "iamUsers": list(users), "roles": list(roles),
                                     "incidentId": summary(run)["incidentId"]}}, dep)


def only(inbox, run):
    notes = inbox.about(summary(run)["incidentId"])
    assert len(notes) == 1, notes
    return notes[0]


# -- 1. targets resolved from AWS ------------------------------------------------------------------------------
def test_a_renamed_user_is_found_through_its_key_and_contained(dep, inbox):
    name, (key,) = user(dep)
    as_key(key).list_users()
    dep.client("iam").update_user(UserName=name, NewUserName=name + "-renamed")
    ev = user_finding(name, key["AccessKeyId"])
    run = local.deliver(ev, dep)
    assert run.status == "SUCCEEDED", run.cause
    assert run.output["outcome"] == "contained"
    target = identity_detail(run, 0)
    assert target["target"].endswith(f":user/{name}-renamed") and target["findingName"] == name
    assert keys_of(dep, name + "-renamed") == {key["AccessKeyId"]: "Inactive"}
    assert attached(dep, name + "-renamed") == [QUARANTINE]
    assert only(inbox, run)["subject"].startswith(f"IR CONTAINED: user/{name}-renamed in {MEMBER}")
    before = iam_state(dep.client("iam"))
    again = local.execute(republished(ev), dep)
    assert again.status == "SUCCEEDED" and again.output["outcome"] == "duplicate"
    assert iam_state(dep.client("iam")) == before


def test_a_user_name_that_is_not_the_key_owner_leads_to_the_owner(dep):
    alice, alice_keys = user(dep, keys=2)
    bob, (bob_key,) = user(dep)
    as_key(bob_key).list_users()
    run = local.execute(user_finding(alice, bob_key["AccessKeyId"]), dep)
    assert run.status == "SUCCEEDED", run.cause
    assert run.output["outcome"] == "contained"
    target = identity_detail(run, 0)
    assert target["target"].endswith(f":user/{bob}") and target["findingName"] == alice
    assert "belongs to " + bob in target["mismatch"]
    assert keys_of(dep, bob) == {bob_key["AccessKeyId"]: "Inactive"}
    assert set(keys_of(dep, alice).values()) == {"Active"} and attached(dep, alice) == [] and inline(dep, alice) == []
    assert any(e["status"] == "resolved" for e in target["entries"])


def test_named_key_scope_never_falls_back_to_the_wrong_users_keys(dep):
    alice, _ = user(dep, keys=2)
    bob, bob_keys = user(dep, keys=2)
    with configured(dep, IR_KEY_SCOPE="named"):
        run = local.execute(user_finding(alice, bob_keys[0]["AccessKeyId"]), dep)
    assert run.status == "SUCCEEDED", run.cause
    assert keys_of(dep, bob) == {bob_keys[0]["AccessKeyId"]: "Inactive", bob_keys[1]["AccessKeyId"]: "Active"}
    assert set(keys_of(dep, alice).values()) == {"Active"} and attached(dep, alice) == []


def test_a_deleted_user_is_not_found_loudly_and_retried_not_a_duplicate(dep, inbox):
    name, (key,) = user(dep)
    iam = dep.client("iam")
    iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    iam.delete_user(UserName=name)
    before = iam_state(iam)
    ev = user_finding(name, key["AccessKeyId"])
    run = local.deliver(ev, dep)
    assert run.status == "SUCCEEDED", run.cause
    assert run.output["outcome"] == "not_found"
    note = only(inbox, run)
    assert note["subject"].startswith("IR NOT FOUND - NOT CONTAINED:") and note["attributes"]["priority"] == "high"
    assert key["AccessKeyId"] in note["message"]["headline"] and MEMBER in note["message"]["headline"]
    assert record(dep, run.output["incidentId"])["status"] == "not_found"
    assert iam_state(iam) == before
    again = local.execute(republished(ev), dep)  # re-checked: a not_found is never a duplicate
    assert again.output["outcome"] == "not_found" and again.output["attempt"]["trigger"] == "retry"
    assert iam_state(iam) == before


def test_a_republished_finding_naming_a_target_that_exists_is_answered(dep):
    ghost = uid("ghost")
    ev = user_finding(ghost, "AKIAGHOSTKEY00000001")
    first = local.execute(ev, dep)
    assert first.output["outcome"] == "not_found"
    name, (key,) = user(dep)
    later = republished(ev)
    later["detail"]["resource"]["accessKeyDetails"].update(userName=name, accessKeyId=key["AccessKeyId"])
    run = local.execute(later, dep)
    assert run.status == "SUCCEEDED", run.cause
    assert run.output["outcome"] == "contained" and run.output["attempt"]["trigger"] == "new_target"
    assert keys_of(dep, name) == {key["AccessKeyId"]: "Inactive"}


def test_a_role_is_contained_only_when_its_role_id_issued_the_credentials(dep):
    attacker, (key,) = user(dep, account=OTHER)
    same = uid("shared")
    here = role(dep, same, account=MEMBER)
    there = role(dep, same, account=OTHER, trust_account=OTHER)
    session = as_key(key, "sts").assume_role(RoleArn=there["Arn"], RoleSessionName="xs")["Credentials"]
    stolen = boto3.client("sts", region_name=REGION, aws_access_key_id=session["AccessKeyId"],
                          aws_secret_access_key=session["SecretAccessKey"], aws_session_token=session["SessionToken"])
    try:  # lateral movement into the finding's account: CloudTrail there records who tried
        stolen.assume_role(RoleArn=here["Arn"], RoleSessionName="ys")
    except Exception:  # noqa: BLE001 - refused or not: the attempt is what CloudTrail records
        pass
    run = local.execute(role_finding(same, session["AccessKeyId"], f"{there['RoleId']}:xs"), dep)
    assert run.status == "SUCCEEDED", run.cause
    assert run.output["outcome"] == "manual_action_required"
    target = identity_detail(run, 0)
    assert target["target"] == there["Arn"] and OTHER in " ".join(target["manualSteps"])
    assert inline(dep, same, MEMBER, "role") == [] and inline(dep, same, OTHER, "role") == []


def test_a_finding_naming_the_wrong_role_leads_to_the_issuing_role_in_the_account(dep):
    _, (key,) = user(dep)
    named = role(dep)
    issuer = role(dep, trust_account=MEMBER)
    session = as_key(key, "sts").assume_role(RoleArn=issuer["Arn"], RoleSessionName="ab")["Credentials"]
    boto3.client("ec2", region_name=REGION, aws_access_key_id=session["AccessKeyId"],
                 aws_secret_access_key=session["SecretAccessKey"],
                 aws_session_token=session["SessionToken"]).describe_instances()  # the stolen session at work
    run = local.execute(role_finding(named["RoleName"], session["AccessKeyId"], f"{issuer['RoleId']}:ab"), dep)
    assert run.output["outcome"] == "contained"
    target = identity_detail(run, 0)
    assert target["target"] == issuer["Arn"] and target["resolvedBy"] == "cloudtrail"
    assert target["findingName"] == named["RoleName"]
    assert inline(dep, issuer["RoleName"], kind="role") == ["AWSRevokeOlderSessions"]
    assert inline(dep, named["RoleName"], kind="role") == []


def test_a_same_named_role_that_did_not_issue_the_credentials_is_never_revoked(dep, inbox):
    name = uid("app")
    role(dep, name, account=MEMBER)
    other = role(dep, name, account=OTHER)
    run = local.execute(role_finding(name, "ASIAEXAMPLEKEY000077", f"{other['RoleId']}:s"), dep)
    assert run.status == "SUCCEEDED", run.cause
    assert run.output["outcome"] == "not_found"
    assert "not the finding's principal" in identity_detail(run, 0)["reason"]
    assert inline(dep, name, MEMBER, "role") == []
    assert only(inbox, run)["subject"].startswith("IR NOT FOUND - NOT CONTAINED:")


def test_the_issuing_role_is_contained_when_its_role_id_matches(dep):
    found = role(dep)
    run = local.execute(role_finding(found["RoleName"], "ASIAEXAMPLEKEY000078", f"{found['RoleId']}:i-0"), dep)
    assert run.output["outcome"] == "contained"
    assert inline(dep, found["RoleName"], kind="role") == ["AWSRevokeOlderSessions"]
    before = iam_state(dep.client("iam"))
    again = replay(dep, run, roles=[found["RoleName"]])
    assert identity_detail(again, 0)["status"] == "already_contained" and iam_state(dep.client("iam")) == before


# -- 3. protection an attacker cannot claim --------------------------------------------------------------------
def test_an_attackers_ir_responder_role_is_contained(dep):
    backdoor = role(dep, "ir-responder-backdoor")
    dep.client("iam").attach_role_policy(RoleName="ir-responder-backdoor",
                                         PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    run = local.execute(role_finding("ir-responder-backdoor", "ASIAEXAMPLEKEY000079", f"{backdoor['RoleId']}:b"), dep)
    assert run.output["outcome"] == "contained"
    assert inline(dep, "ir-responder-backdoor", kind="role") == ["AWSRevokeOlderSessions"]


def test_the_member_role_is_protected_by_its_exact_arn(dep):
    member = dep.client("iam").get_role(RoleName="ir-responder-member")["Role"]
    before = iam_state(dep.client("iam"))
    run = local.execute(role_finding("ir-responder-member", "ASIAEXAMPLEKEY000080", f"{member['RoleId']}:s"), dep)
    assert run.output["outcome"] == "protected" and "own roles" in identity_detail(run, 0)["reason"]
    assert iam_state(dep.client("iam")) == before


def test_a_tag_the_user_set_on_itself_protects_nothing(dep, inbox):
    name, (key,) = user(dep)
    as_key(key).tag_user(UserName=name, Tags=[{"Key": "ir:protected", "Value": "true"}])
    backdate_cloudtrail("TagUser", name, days=30)  # even long before the incident
    run = local.execute(user_finding(name, key["AccessKeyId"]), dep)
    assert run.output["outcome"] == "contained"
    target = identity_detail(run, 0)
    assert target["protectionTag"]["verdict"] == "void" and "on itself" in target["protectionTag"]["why"]
    assert keys_of(dep, name) == {key["AccessKeyId"]: "Inactive"} and attached(dep, name) == [QUARANTINE]


def test_a_tag_set_during_the_incident_window_protects_nothing(dep):
    name, (key,) = user(dep)
    dep.client("iam").tag_user(UserName=name, Tags=[{"Key": "ir:protected", "Value": "true"}])
    run = local.execute(user_finding(name, key["AccessKeyId"]), dep)
    assert run.output["outcome"] == "contained"
    assert "during the incident's window" in identity_detail(run, 0)["protectionTag"]["why"]
    assert keys_of(dep, name) == {key["AccessKeyId"]: "Inactive"}


def test_a_tag_an_administrator_set_before_the_incident_protects(dep, inbox):
    name, (key,) = user(dep, tags=[{"Key": "ir:protected", "Value": "true"}])
    backdate_cloudtrail("CreateUser", name, days=30)
    before = iam_state(dep.client("iam"))
    run = local.execute(user_finding(name, key["AccessKeyId"]), dep)
    assert run.output["outcome"] == "protected"
    assert "ir-local-admin" in identity_detail(run, 0)["reason"]
    assert iam_state(dep.client("iam")) == before
    assert only(inbox, run)["subject"].startswith("IR PROTECTED - NOT CONTAINED:")


def test_a_tag_whose_origin_cannot_be_established_is_unverified_and_says_how_to_contain(dep, inbox):
    name, (key,) = user(dep, tags=[{"Key": "ir:protected", "Value": "true"}])
    backdate_cloudtrail("CreateUser", name, days=120)  # older than event history
    before = iam_state(dep.client("iam"))
    run = local.execute(user_finding(name, key["AccessKeyId"]), dep)
    assert run.status == "FAILED" and run.error == "ProtectionCheckFailed"
    out = summary(run)
    assert out["outcome"] == "protection_unverified"
    assert iam_state(dep.client("iam")) == before
    note = only(inbox, run)
    assert note["subject"].startswith("IR NOT CONTAINED - PROTECTION UNVERIFIED:")
    steps = " ".join(note["message"]["manualSteps"][0]["steps"])
    assert "start-execution" in steps and name in steps


def test_break_glass_patterns_match_any_case_and_any_path(dep):
    found = role(dep, "BreakGlassAdmin" + uuid.uuid4().hex[:4], path="/emergency/")
    before = iam_state(dep.client("iam"))
    with configured(dep, IR_PROTECTED_PRINCIPALS="arn:aws:iam::*:role/breakglass*"):
        run = local.execute(role_finding(found["RoleName"], "ASIAEXAMPLEKEY000081", f"{found['RoleId']}:s"), dep)
    assert run.output["outcome"] == "protected", run.output
    assert iam_state(dep.client("iam")) == before


# -- 4. strict identifiers, 13.8 regions --------------------------------------------------------------------
MANUAL = {"accountId": MEMBER, "region": REGION, "reason": "r", "iamUsers": ["victim"]}


@pytest.mark.parametrize("change, field", [
    ({"incidentId": "IR-100\n"}, "manual.incidentId"),
    ({"accountId": MEMBER + "\n"}, "manual.accountId"),
    ({"accountId": "\u0664\u0664\u0664\u0664\u0665\u0665\u0665\u0665\u0666\u0666\u0666\u0666"}, "manual.accountId"),
    ({"iamUsers": ["d\u00e9ployer"]}, "manual.iamUsers[0]"),
    ({"roles": ["\u0430dmin"]}, "manual.roles[0]"),  # Cyrillic a
    ({"region": "us-east-1"}, "manual.region"),
])
def test_bad_identifiers_and_uncovered_regions_are_refused_naming_the_field(dep, change, field):
    before = iam_state(dep.client("iam"))
    run = local.execute({"manual": {**MANUAL, **change}}, dep)
    assert run.status == "FAILED" and run.error == "InvalidInput"
    message = json.loads(run.cause)["errorMessage"]
    assert message.startswith(field + ":")
    if field == "manual.region":
        assert f"covered: {REGION}" in message
    assert record(dep, "IR-100\n") is None and iam_state(dep.client("iam")) == before


def test_a_finding_from_a_region_the_deployment_does_not_cover_is_refused(dep):
    name, (key,) = user(dep)
    ev = user_finding(name, key["AccessKeyId"])
    ev["region"] = ev["detail"]["region"] = "us-east-1"
    run = local.execute(ev, dep)
    assert run.status == "FAILED" and run.error == "InvalidInput"
    assert json.loads(run.cause)["errorMessage"].startswith("detail.region:")
    assert keys_of(dep, name) == {key["AccessKeyId"]: "Active"}


# -- 5. cut-off never older than the activity ------------------------------------------------------------------
def revoke_cutoff(dep, name, kind="user"):
    iam = dep.client("iam")
    doc = (iam.get_user_policy(UserName=name, PolicyName="AWSRevokeOlderSessions") if kind == "user"
           else iam.get_role_policy(RoleName=name, PolicyName="AWSRevokeOlderSessions"))["PolicyDocument"]
    return doc["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"]


def test_a_manual_request_adding_a_target_moves_the_cutoff_forward(dep):
    name, _ = user(dep)
    incident = uid("IR")
    first = local.execute({"manual": {**MANUAL, "iamUsers": [name], "incidentId": incident}}, dep)
    assert first.output["outcome"] == "contained"
    time.sleep(1.1)
    extra = role(dep)
    second = local.execute({"manual": {**MANUAL, "iamUsers": [name], "roles": [extra["RoleName"]],
                                       "incidentId": incident}}, dep)
    assert second.output["outcome"] == "contained"
    assert second.output["cutoff"] > first.output["cutoff"]
    assert revoke_cutoff(dep, extra["RoleName"], "role") == second.output["cutoff"]
    assert revoke_cutoff(dep, name) == second.output["cutoff"]
    assert record(dep, incident)["previousCutoffs"] == [first.output["cutoff"]]
    before = iam_state(dep.client("iam"))
    third = local.execute({"manual": {**MANUAL, "iamUsers": [name], "roles": [extra["RoleName"]],
                                      "incidentId": incident}}, dep)
    assert third.output["cutoff"] == second.output["cutoff"] and iam_state(dep.client("iam")) == before


def test_an_escalation_moves_the_cutoff_forward(dep):
    name, (key,) = user(dep)
    ev = user_finding(name, key["AccessKeyId"])
    first = local.execute(ev, dep)
    time.sleep(1.1)
    second = local.execute(republished(ev, severity=8.5), dep)
    assert second.output["attempt"]["trigger"] == "escalation"
    assert second.output["cutoff"] > first.output["cutoff"] == record(dep, first.output["incidentId"])[
        "previousCutoffs"][0]
    assert revoke_cutoff(dep, name) == second.output["cutoff"]


def test_activity_after_the_cutoff_moves_it_forward(dep):
    name, (key,) = user(dep)
    ev = user_finding(name, key["AccessKeyId"])
    first = local.execute(ev, dep)
    # activity seen strictly after the stored cut-off (which triage rounded *up* to the second): wait until the
    # clock's whole second is past it, whatever the sub-second phase the first run started in
    cutoff = calendar.timegm(time.strptime(first.output["cutoff"], "%Y-%m-%dT%H:%M:%SZ"))
    time.sleep(max(0.0, cutoff + 1.05 - time.time()))
    later = republished(ev)
    later["detail"]["service"]["eventLastSeen"] = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    assert later["detail"]["service"]["eventLastSeen"][:19] + "Z" > first.output["cutoff"]
    second = local.execute(later, dep)
    assert second.output["attempt"]["trigger"] == "activity"
    assert second.output["cutoff"] > first.output["cutoff"]
    assert revoke_cutoff(dep, name) == second.output["cutoff"]


# -- 6. every path of a user closed ----------------------------------------------------------------------------
def test_console_access_is_removed_and_its_creation_date_recorded(dep):
    name, (key,) = user(dep)
    iam = dep.client("iam")
    iam.create_login_profile(UserName=name, Password="Correct-Horse-9")
    created = iam.get_login_profile(UserName=name)["LoginProfile"]["CreateDate"]
    run = local.execute(user_finding(name, key["AccessKeyId"]), dep)
    assert run.output["outcome"] == "contained"
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_login_profile(UserName=name)
    profile = identity_detail(run, 0)["loginProfile"]
    assert profile["existed"] is True and profile["createDate"][:19] == created.strftime("%Y-%m-%dT%H:%M:%S")
    timeline = record(dep, run.output["incidentId"])["timeline"]
    assert any(e.get("api") == "iam:DeleteLoginProfile" and e["status"] == "done" for e in timeline)
    again = replay(dep, run, users=[name])
    assert identity_detail(again, 0)["status"] == "already_contained"
    assert identity_detail(again, 0)["loginProfile"] == {"existed": False}


def test_console_access_stays_when_the_deployment_says_so(dep):
    name, (key,) = user(dep)
    iam = dep.client("iam")
    iam.create_login_profile(UserName=name, Password="Correct-Horse-9")
    with configured(dep, IR_REMOVE_CONSOLE_ACCESS="false"):
        run = local.execute(user_finding(name, key["AccessKeyId"]), dep)
    assert run.output["outcome"] == "contained"
    assert iam.get_login_profile(UserName=name)["LoginProfile"]["UserName"] == name


def test_a_user_at_the_managed_policy_quota_is_denied_by_an_inline_policy(dep):
    name, (key,) = user(dep)
    iam = dep.client("iam")
    for i in range(10):
        arn = iam.create_policy(PolicyName=uid(f"filler{i}"), PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket",
                                                    "Resource": "*"}]}))["Policy"]["Arn"]
        iam.attach_user_policy(UserName=name, PolicyArn=arn)
    run = local.execute(user_finding(name, key["AccessKeyId"]), dep)
    assert run.status == "SUCCEEDED", run.cause
    assert run.output["outcome"] == "contained"
    target = identity_detail(run, 0)
    assert "LimitExceeded" in target["denyAll"]
    assert QUARANTINE not in attached(dep, name)
    doc = iam.get_user_policy(UserName=name, PolicyName="ir-quarantine-deny-all")["PolicyDocument"]
    assert doc["Statement"][0]["Effect"] == "Deny" and doc["Statement"][0]["Action"] == "*"
    assert keys_of(dep, name) == {key["AccessKeyId"]: "Inactive"}
    before = iam_state(iam)
    again = replay(dep, run, users=[name])
    assert identity_detail(again, 0)["status"] == "already_contained" and iam_state(iam) == before
