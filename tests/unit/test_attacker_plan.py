"""The attacker's plan from its CloudTrail records (responder.attacker_plan): what the attacker can shape never
leads anywhere it should not. Pure: no AWS."""
from __future__ import annotations

import json

from responder import attacker_plan, rotation

ACCOUNT, KEY = "111122223333", "AKIAEXAMPLESTOLEN001"
INCIDENT = {"accountId": ACCOUNT, "region": "eu-west-1", "partition": "aws", "cutoff": "2026-06-01T12:00:00Z",
            "window": {"start": "2026-06-01T00:00:00Z", "end": "2026-06-01T12:00:00Z"}}
IDENTITY = {"type": "IAMUser", "name": "svc-build", "accessKeyId": KEY}
ME = {"type": "IAMUser", "accountId": ACCOUNT, "userName": "svc-build", "accessKeyId": KEY,
      "arn": f"arn:aws:iam::{ACCOUNT}:user/svc-build"}


def event(name, source, *, request=None, response=None, who=ME, when="2026-06-01T10:00:00Z", as_text=True,
          **extra):
    record = {"eventID": f"ev-{name}-{when}", "eventName": name, "eventSource": source, "eventTime": when,
              "awsRegion": "eu-west-1", "userIdentity": who, "requestParameters": request,
              "responseElements": response, "recipientAccountId": ACCOUNT, **extra}
    return {"EventId": record["eventID"], "EventName": name, "CloudTrailEvent": json.dumps(record) if as_text
            else record}


def created_key(user="deployer", key="AKIAMINTED0000000001", **kw):
    return event("CreateAccessKey", "iam.amazonaws.com", request={"userName": kw.pop("asked", user)},
                 response={"accessKey": {"accessKeyId": key, "userName": user, "status": "Active"}}, **kw)


def derive(*events, identity=IDENTITY):
    return attacker_plan.derive(list(events), INCIDENT, identity)


def test_each_pivot_kind_is_read_from_the_response_and_cites_its_event():
    plan = derive(
        event("AssumeRole", "sts.amazonaws.com", request={"roleArn": f"arn:aws:iam::{ACCOUNT}:role/app"},
              response={"assumedRoleUser": {"assumedRoleId": "AROAEXAMPLEROLE:loot",
                                            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/app/loot"}}),
        created_key(as_text=False),
        event("CreateUser", "iam.amazonaws.com", response={"user": {"userName": "backdoor", "userId": "AIDAB"}}),
        event("CreateRole", "iam.amazonaws.com", response={"role": {"roleName": "r", "roleId": "AROAR"}}),
        event("CreateLoginProfile", "iam.amazonaws.com", response={"loginProfile": {"userName": "backdoor"}}),
        event("EnableMFADevice", "iam.amazonaws.com", request={"userName": "bob", "serialNumber": "arn:mfa/bob"}),
        event("CreateGrant", "kms.amazonaws.com", request={"keyId": "1234", "granteePrincipal": "arn:x"},
              response={"grantId": "g1", "keyId": f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234"}))
    kinds = {p["kind"]: p for p in plan["pivots"]}
    assert set(kinds) == {"assumed_role", "created_key", "created_user", "created_role", "login_profile",
                          "mfa_device", "kms_grant"}
    assert kinds["assumed_role"]["target"] == f"arn:aws:iam::{ACCOUNT}:role/app"
    assert kinds["assumed_role"]["roleId"] == "AROAEXAMPLEROLE"
    assert kinds["kms_grant"]["grantId"] == "g1" and kinds["kms_grant"]["account"] == ACCOUNT
    assert all(p["eventId"].startswith("ev-" + p["eventName"]) for p in plan["pivots"])
    assert plan["dropped"] == {}


def test_a_request_naming_the_admin_never_makes_the_admin_a_target():
    """The attacker asks for a key for `admin`; AWS says it created one for `deployer`: only that is followed."""
    (pivot,) = derive(created_key(user="deployer", asked="security-admin"))["pivots"]
    assert pivot["userName"] == "deployer" and "security-admin" not in json.dumps(pivot)


def test_records_of_others_failures_other_accounts_sources_and_times_are_dropped():
    other = dict(ME, accessKeyId="AKIAOTHERPRINCIPAL01", userName="admin")
    plan = derive(
        created_key(who=other),
        created_key(errorCode="AccessDenied"),
        created_key(recipientAccountId="999999999999"),
        event("CreateAccessKey", "evil.example.com", response={"accessKey": {"accessKeyId": "A", "userName": "u"}}),
        created_key(when="2026-05-20T00:00:00Z"),
        created_key(when="2026-06-02T00:00:00Z"),
        event("AssumeRole", "sts.amazonaws.com", request={"roleArn": "arn:aws:iam::1:role/x"}),  # no response
        event("CreateGrant", "kms.amazonaws.com", response={"grantId": "g", "keyId": "not-an-arn"}),
        {"EventId": "x", "CloudTrailEvent": "{not json"},
        "garbage",
    )
    assert plan["pivots"] == []
    assert plan["dropped"] == {
        "made by another principal": 1, "CreateAccessKey failed": 1, "received by another account": 1,
        "CreateAccessKey from another event source": 1, "outside the incident window": 2,
        "AssumeRole: no assumedRoleUser in the response": 1, "CreateGrant: no grantId / key ARN in the response": 1,
        "no CloudTrail record": 2}


def test_a_cross_account_role_is_a_pivot_of_that_account():
    (pivot,) = derive(event("AssumeRole", "sts.amazonaws.com", response={"assumedRoleUser": {
        "assumedRoleId": "AROAOTHER:s", "arn": "arn:aws:sts::999988887777:assumed-role/admin/s"}}))["pivots"]
    assert pivot["account"] == "999988887777" and pivot["target"] == "arn:aws:iam::999988887777:role/admin"


def test_a_huge_event_list_is_bounded():
    events = [created_key(user=f"u{i}", key=f"AKIA{i:016d}") for i in range(attacker_plan.MAX_EVENTS + 500)]
    plan = derive(*events)
    assert plan["examined"] == attacker_plan.MAX_EVENTS
    assert len(plan["pivots"]) == attacker_plan.MAX_PIVOTS
    assert plan["leftOut"]["pivots"] == attacker_plan.MAX_EVENTS - attacker_plan.MAX_PIVOTS
    assert plan["dropped"] == {f"beyond the first {attacker_plan.MAX_EVENTS} records": 500}


def test_duplicates_merge_and_reads_are_named_by_arn():
    secret = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:db-AbCdEf"
    plan = derive(created_key(), created_key(when="2026-06-01T10:05:00Z"),
                  event("GetSecretValue", "secretsmanager.amazonaws.com", request={"secretId": secret}),
                  event("GetSecretValue", "secretsmanager.amazonaws.com", request={"secretId": "api-token"}),
                  event("GetParameters", "ssm.amazonaws.com", request={"names": ["/app/db", "plain"]}),
                  event("GetSecretValue", "secretsmanager.amazonaws.com", request={"secretId": "x"},
                        errorCode="AccessDenied"))
    assert len(plan["pivots"]) == 1
    assert [r["arn"] for r in plan["reads"]] == [
        secret, f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:api-token",
        f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/app/db", f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/plain"]


def test_without_the_finding_key_the_principal_is_matched_by_name_and_account():
    role_identity = {"type": "AssumedRole", "name": "app"}
    session = {"type": "AssumedRole", "accountId": ACCOUNT, "accessKeyId": "ASIAX",
               "sessionContext": {"sessionIssuer": {"type": "Role", "userName": "app"}}}
    assert attacker_plan.is_principal(session, role_identity, ACCOUNT)
    assert not attacker_plan.is_principal(dict(session, accountId="999999999999"), role_identity, ACCOUNT)
    assert not attacker_plan.is_principal(ME, role_identity, ACCOUNT)


def test_a_policy_names_a_principal_by_arn_or_unique_id_in_principal_or_condition():
    arn = f"arn:aws:iam::{ACCOUNT}:user/svc-build"
    trust = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": [arn]}, "Action": "sts:AssumeRole"}]}
    assert rotation.names(trust, {arn})
    assert rotation.names(json.dumps(trust), {arn})
    assert rotation.names({"Statement": {"Principal": "*", "Condition": {"StringEquals": {
        "aws:PrincipalArn": arn}}}}, {arn})
    assert rotation.names({"Statement": [{"Principal": {"AWS": "AIDAEXAMPLE"}}]}, {"AIDAEXAMPLE"})
    assert not rotation.names({"Statement": [{"Principal": {"AWS": arn + "-other"}, "Resource": arn}]}, {arn})
    assert not rotation.names("not json", {arn})
