"""Release from the saved pre-state (issue 15, item 3), through the shipped state machine: after an IAM user's
containment, a release request restores exactly what the user had (policies, key statuses, inline policies) read
back through boto3; a dry run changes nothing; a second release changes nothing; a change since containment gets
the release refused, naming the target, with nothing changed; bad input is refused naming the field."""
from __future__ import annotations

import json
import uuid

import pytest

from state_machines import local
from tests.worlds.deployment import deployment
from tests.worlds.operations import record
from tests.worlds.workflow import access_key_event, iam_state

MEMBER, FORENSICS, REGION = "444455556666", "999988887777", "eu-west-1"
QUARANTINE = "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV2"
READ_ONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"

dep = deployment(member_account=MEMBER, forensics_account=FORENSICS, region=REGION)


def contained_user(dep, *, inactive_key=False):
    """A user with a managed policy, an inline policy and two keys (one already inactive when asked), contained by a
    finding through the state machine. Returns (name, incident id, the user's state before containment)."""
    iam = dep.client("iam")
    name = f"user-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    iam.attach_user_policy(UserName=name, PolicyArn=READ_ONLY)
    iam.put_user_policy(UserName=name, PolicyName="app", PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":'
                                                                          '"Allow","Action":"s3:GetObject","Resource":"*"}]}')
    keys = [iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"] for _ in range(2)]
    if inactive_key:
        iam.update_access_key(UserName=name, AccessKeyId=keys[1], Status="Inactive")
    before = iam_state(iam)["users"][name]
    ev = access_key_event(account=MEMBER, region=REGION, user_type="IAMUser", name=name, key=keys[0])
    run = local.execute(ev, dep)
    assert run.status == "SUCCEEDED" and run.output["outcome"] == "contained", run.cause
    after = iam_state(iam)["users"][name]
    assert QUARANTINE in after["attached"] and {s for _, s in after["keys"]} == {"Inactive"}
    return name, f"gd-{ev['detail']['id']}", before


def release(incident_id, users, **extra):
    return {"release": {"incidentId": incident_id, "reason": "false positive: the owner's deploy script", "iamUsers": users,
                        **extra}}


def without_revoke(state):
    """The user's state but the AWSRevokeOlderSessions deny, which a release keeps on purpose (README)."""
    return dict(state, inline={k: v for k, v in state["inline"].items() if k != "AWSRevokeOlderSessions"})


def test_release_restores_the_users_exact_pre_state_and_a_second_release_changes_nothing(dep):
    name, incident_id, before = contained_user(dep, inactive_key=True)
    run = local.execute(release(incident_id, [name]), dep)
    assert run.status == "SUCCEEDED", run.cause
    assert run.states == ["Triage", "Route", "Release", "Finalize", "Outcome", "Done"]
    assert run.output["outcome"] == "released"
    now = iam_state(dep.client("iam"))["users"][name]
    assert without_revoke(now) == before  # the inactive key stays inactive: containment did not deactivate it
    assert "AWSRevokeOlderSessions" in now["inline"]  # kept: sessions issued before the cut-off stay revoked
    target = run.output["release"]["targets"][0]
    assert target["status"] == "released" and target["target"].endswith(f":user/{name}") and target["changes"] == 2
    item = record(dep, incident_id)
    assert item["status"] == "contained"  # the response's status stays; the release is beside it
    ours = [e for e in item["timeline"] if e.get("task") == "release" and e.get("status") == "done"]
    assert sorted(e["api"] for e in ours) == ["iam:DetachUserPolicy", "iam:UpdateAccessKey"]
    assert any(k.startswith("release:") for k in item["results"])
    assert "-release-" in run.output["manifest"]["key"]

    again = local.execute(release(incident_id, [name]), dep)
    assert again.status == "SUCCEEDED", again.cause
    assert again.output["outcome"] == "already_released"
    assert iam_state(dep.client("iam"))["users"][name] == now


def test_dry_run_plans_every_undo_and_changes_nothing(dep):
    name, incident_id, _ = contained_user(dep)
    contained = iam_state(dep.client("iam"))["users"][name]
    run = local.execute(release(incident_id, [name], dryRun=True), dep)
    assert run.status == "SUCCEEDED", run.cause
    assert run.output["outcome"] == "release_planned"
    assert run.output["release"]["targets"][0]["changes"] == 3  # the policy and both keys
    assert iam_state(dep.client("iam"))["users"][name] == contained


@pytest.mark.parametrize("change", ["reactivated", "deleted", "detached"])
def test_a_change_since_containment_refuses_the_release_naming_the_target_and_nothing_changes(dep, change):
    name, incident_id, _ = contained_user(dep)
    iam = dep.client("iam")
    key = iam_state(iam)["users"][name]["keys"][0][0]
    if change == "reactivated":
        iam.update_access_key(UserName=name, AccessKeyId=key, Status="Active")
    elif change == "deleted":
        iam.delete_access_key(UserName=name, AccessKeyId=key)
    else:
        iam.detach_user_policy(UserName=name, PolicyArn=QUARANTINE)
    changed = iam_state(iam)["users"][name]
    run = local.execute(release(incident_id, [name]), dep)
    assert run.status == "FAILED" and run.error == "ReleaseRefused"
    assert f"user/{name}" in run.cause and change in run.cause
    assert iam_state(iam)["users"][name] == changed


@pytest.mark.parametrize("request_, field", [
    ({"release": {"incidentId": "x", "reason": "r", "iamUsers": ["u"], "force": True}}, "release.force"),
    ({"release": {"reason": "r", "iamUsers": ["u"]}}, "release.incidentId"),
    ({"release": {"incidentId": "x", "iamUsers": ["u"]}}, "release.reason"),
    ({"release": {"incidentId": "x", "reason": "r", "iamUsers": ["bad name!"]}}, "release.iamUsers[0]"),
    ({"release": {"incidentId": "x", "reason": "r", "iamUsers": ["u"], "dryRun": "yes"}}, "release.dryRun"),
    ({"release": {"incidentId": "x", "reason": "r"}}, "release.iamUsers"),
    ({"release": {"incidentId": "x", "reason": "r", "iamUsers": ["u"]}, "manual": {}}, "manual"),
])
def test_bad_release_input_is_refused_naming_the_field(dep, request_, field):
    run = local.execute(request_, dep)
    assert run.status == "FAILED" and run.error == "InvalidInput"
    assert field in run.cause


def test_only_targets_this_incident_contained_can_be_released(dep):
    name, incident_id, _ = contained_user(dep)
    iam = dep.client("iam")
    other = f"user-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=other)
    iam.attach_user_policy(UserName=other, PolicyArn=QUARANTINE)  # quarantined by someone else, not this incident
    contained, untouched = iam_state(iam)["users"][name], iam_state(iam)["users"][other]
    run = local.execute(release(incident_id, [name, other]), dep)
    assert run.status == "FAILED" and run.error == "InvalidInput"
    assert "release.iamUsers[1]" in run.cause and other in run.cause
    assert iam_state(iam)["users"][name] == contained and iam_state(iam)["users"][other] == untouched
    unknown = local.execute(release("gd-no-such-incident", [name]), dep)
    assert unknown.status == "FAILED" and "release.incidentId" in unknown.cause


def test_console_access_is_restored_only_when_asked_with_the_password_in_a_secret_and_nowhere_else(dep):
    iam = dep.client("iam")
    name = f"user-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    iam.create_login_profile(UserName=name, Password="Initial-Passw0rd!")
    key = iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"]
    ev = access_key_event(account=MEMBER, region=REGION, user_type="IAMUser", name=name, key=key)
    contained = local.execute(ev, dep)
    assert contained.output["outcome"] == "contained", contained.cause
    incident_id = f"gd-{ev['detail']['id']}"
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_login_profile(UserName=name)  # containment deleted it

    plan = local.execute(release(incident_id, [name], restoreConsoleAccess=True, dryRun=True), dep)
    assert plan.output["outcome"] == "release_planned", plan.cause
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_login_profile(UserName=name)

    run = local.execute(release(incident_id, [name], restoreConsoleAccess=True), dep)
    assert run.status == "SUCCEEDED", run.cause
    assert run.output["outcome"] == "released"
    profile = iam.get_login_profile(UserName=name)["LoginProfile"]
    assert profile["PasswordResetRequired"] is True
    target = run.output["release"]["targets"][0]
    assert target["consoleAccess"].startswith("restored")
    secrets = dep.client("secretsmanager", dep.security_account)
    listed = [s for s in secrets.list_secrets()["SecretList"] if s["Name"].endswith(f"/{MEMBER}/{name}")]
    assert len(listed) == 1 and listed[0]["Name"].startswith(f"ir-responder/release/{incident_id}/")
    assert listed[0]["ARN"] in target["consoleAccess"]
    assert {"Key": "ir:incident", "Value": incident_id} in listed[0]["Tags"]
    value = json.loads(secrets.get_secret_value(SecretId=listed[0]["ARN"])["SecretString"])
    password = value["password"]
    assert len(password) >= 32 and any(c.isupper() for c in password) and any(c.isdigit() for c in password)
    # the password is nowhere but in the secret: not in the outcome, the record, the manifest, the notification
    item = record(dep, incident_id)
    manifest = dep.client("s3", dep.forensics_account).get_object(Bucket=dep.bucket, Key=run.output["manifest"]["key"])
    for text in (json.dumps(run.output), json.dumps(item, default=str), manifest["Body"].read().decode(),
                 json.dumps(run.events, default=str), json.dumps(plan.events, default=str)):
        assert password not in text

    again = local.execute(release(incident_id, [name], restoreConsoleAccess=True), dep)
    assert again.output["outcome"] == "already_released", again.cause  # the profile it made is not a conflict
    assert json.loads(secrets.get_secret_value(SecretId=listed[0]["ARN"])["SecretString"])["password"] == password


def test_a_console_password_set_by_hand_since_containment_refuses_the_console_restore(dep):
    iam = dep.client("iam")
    name = f"user-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    iam.create_login_profile(UserName=name, Password="Initial-Passw0rd!")
    key = iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"]
    ev = access_key_event(account=MEMBER, region=REGION, user_type="IAMUser", name=name, key=key)
    assert local.execute(ev, dep).output["outcome"] == "contained"
    iam.create_login_profile(UserName=name, Password="ByHand-Passw0rd!")
    changed = iam_state(iam)["users"][name]
    run = local.execute(release(f"gd-{ev['detail']['id']}", [name], restoreConsoleAccess=True), dep)
    assert run.status == "FAILED" and run.error == "ReleaseRefused"
    assert "login profile" in run.cause and f"user/{name}" in run.cause
    assert iam_state(iam)["users"][name] == changed


def test_a_role_release_is_accepted_recorded_and_changes_nothing(dep):
    iam = dep.client("iam")
    role = f"role-{uuid.uuid4().hex[:8]}"
    role_id = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}))["Role"]["RoleId"]
    ev = access_key_event(account=MEMBER, region=REGION, user_type="AssumedRole", name=role, key="ASIAEXAMPLEKEY000002")
    ev["detail"]["resource"]["accessKeyDetails"]["principalId"] = f"{role_id}:session"
    assert local.execute(ev, dep).output["outcome"] == "contained"
    contained = iam_state(iam)["roles"][role]
    run = local.execute({"release": {"incidentId": f"gd-{ev['detail']['id']}", "reason": "false positive",
                                     "roles": [role]}}, dep)
    assert run.status == "SUCCEEDED", run.cause
    assert run.output["outcome"] == "already_released"
    target = run.output["release"]["targets"][0]
    assert target["status"] == "nothing_to_release" and target["target"].endswith(f":role/{role}")
    assert iam_state(iam)["roles"][role] == contained  # AWSRevokeOlderSessions stays, by design
    assert "AWSRevokeOlderSessions" in contained["inline"]
    bad = local.execute({"release": {"incidentId": f"gd-{ev['detail']['id']}", "reason": "r",
                                     "roles": ["someone-else"]}}, dep)
    assert bad.status == "FAILED" and "release.roles[0]" in bad.cause
