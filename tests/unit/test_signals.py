"""Every signal the seeds name (issue 14 item 1): S3 findings, the Trusted Advisor exposed-key event, AWS Health
AWS_RISK_CREDENTIALS_EXPOSED, GuardDuty attack sequences. Pure triage, no AWS."""
from __future__ import annotations

import copy
from datetime import datetime, timezone

import pytest
from botocore.exceptions import ClientError

from responder import notify
from responder.errors import InvalidInput, TransientAwsError
from responder.signals_groups import expand
from responder.triage import MAX_TARGETS, normalize
from tests.conftest import load_example

NOW = datetime(2024, 6, 2, 2, 0, 0, tzinfo=timezone.utc)
ACCOUNT = "444455556666"


def ta_event(detail: dict | None = None, **changes) -> dict:
    """The AWS guide appendix's detail, verbatim, as EventBridge delivers it (us-east-1)."""
    event = {"version": "0", "id": "1b8c2e6a-0f61-4a3b-9c1e-3f8a2b7c6d5e",
             "detail-type": "Trusted Advisor Check Item Refresh Notification", "source": "aws.trustedadvisor",
             "account": ACCOUNT, "time": "2024-06-02T01:58:00Z", "region": "us-east-1", "resources": [],
             "detail": detail or load_example("trustedadvisor-exposed-keys-detail.json")}
    event.update(changes)
    return event


def invalid(event, field: str, **kwargs) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        normalize(event, now=NOW, **kwargs)
    assert caught.value.field == field, caught.value
    return caught.value


# -- S3 findings ------------------------------------------------------------------------------------------------
def test_s3_finding_contains_the_actor_and_records_the_bucket():
    incident = normalize(load_example("guardduty-s3.json"), now=NOW)
    assert incident["disposition"] == "respond" and incident["resourceType"] == "S3Bucket"
    assert incident["identities"] == [{"type": "IAMUser", "name": "ci-deployer", "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
                                       "principalId": "AIDAEXAMPLEPRINCIPAL1"}]
    assert incident["signal"] == {"kind": "s3", "buckets": [{"name": "example-payroll-exports",
                                                             "arn": "arn:aws:s3:::example-payroll-exports"}]}


def test_s3_finding_with_an_assumed_role_actor_goes_to_the_role_branch():
    event = load_example("guardduty-s3.json")
    event["detail"]["resource"]["accessKeyDetails"] = {"accessKeyId": "ASIAEXAMPLESESSION01", "userType": "AssumedRole",
                                                       "userName": "etl-role", "principalId": "AROAEXAMPLE:etl"}
    assert [(i["type"], i["name"]) for i in normalize(event, now=NOW)["identities"]] == [("AssumedRole", "etl-role")]


@pytest.mark.parametrize("details, why", [
    (None, "no accessKeyDetails"),
    ({"userType": "AWSService", "principalId": "s3.amazonaws.com"}, "'AWSService'"),
    ({"principalId": "x"}, "no userType"),
])
def test_s3_finding_without_a_usable_actor_is_not_handled_with_the_reason_and_the_bucket(details, why):
    event = load_example("guardduty-s3.json")
    if details is None:
        del event["detail"]["resource"]["accessKeyDetails"]
    else:
        event["detail"]["resource"]["accessKeyDetails"] = details
    incident = normalize(event, now=NOW)
    assert incident["disposition"] == "not_handled" and why in incident["dispositionReason"]
    assert incident["identities"] == [] and incident["signal"]["buckets"][0]["name"] == "example-payroll-exports"


@pytest.mark.parametrize("key, value", [("name", "pay roll"), ("name", "payroll\n"), ("arn", "arn:aws:s3:::other"),
                                        ("name", "pay\u0440oll"), ("arn", "arn:aws:s3:::pay/../x")])
def test_s3_bucket_names_are_checked_whole(key, value):  # legacy names (upper case, _) are still buckets
    event = load_example("guardduty-s3.json")
    event["detail"]["resource"]["s3BucketDetails"][0][key] = value
    invalid(event, f"detail.resource.s3BucketDetails[0].{key}")


# -- Trusted Advisor ---------------------------------------------------------------------------------------------
def test_the_seed_exposed_key_event_quarantines_that_user_and_key():
    incident = normalize(ta_event(), now=NOW, regions=("eu-west-1",))
    assert incident["incidentId"] == "ta-02648f3b-e18f-4019-8d68-ce25efe080ff"
    assert incident["origin"] == "trusted_advisor" and incident["disposition"] == "respond"
    assert incident["accountId"] == ACCOUNT and incident["region"] == "eu-west-1"  # IAM is global
    assert incident["identities"] == [{"type": "IAMUser", "name": "jane-roe-test", "accessKeyId": "AKIAIOSFODNN7EXAMPLE"}]
    assert incident["signal"]["eventRegion"] == "us-east-1" and incident["signal"]["fraudType"] == "Exposed"


def test_a_covered_event_region_is_kept():
    assert normalize(ta_event(), now=NOW, regions=("eu-west-1", "us-east-1"))["region"] == "us-east-1"


def test_the_seed_detail_pasted_bare_needs_the_account():
    detail = load_example("trustedadvisor-exposed-keys-detail.json")
    assert "accountId" in invalid(detail, "accountId").problem
    incident = normalize(dict(detail, accountId=ACCOUNT), now=NOW, regions=("eu-west-1",))
    assert incident["identities"][0]["name"] == "jane-roe-test" and incident["region"] == "eu-west-1"
    assert incident["incidentId"] == normalize(ta_event(), now=NOW)["incidentId"]  # the same incident either way


def test_a_resolved_check_item_is_not_handled():
    detail = load_example("trustedadvisor-exposed-keys-detail.json")
    detail["status"] = "OK"
    incident = normalize(ta_event(detail), now=NOW)
    assert incident["disposition"] == "not_handled" and "resolved" in incident["dispositionReason"]
    assert incident["identities"] == []


def test_a_root_key_gives_manual_steps():
    detail = load_example("trustedadvisor-exposed-keys-detail.json")
    detail["check-item-detail"]["User Name (IAM or Root)"] = "<root_account>"
    assert normalize(ta_event(detail), now=NOW)["identities"][0]["type"] == "Root"


ITEM = "detail.check-item-detail."


@pytest.mark.parametrize("path, value, field", [
    ("User Name (IAM or Root)", "jane-roe-test\n", ITEM + "User Name (IAM or Root)"),
    ("User Name (IAM or Root)", "jane-r\u043ee-test", ITEM + "User Name (IAM or Root)"),  # Cyrillic o
    ("User Name (IAM or Root)", "jane roe", ITEM + "User Name (IAM or Root)"),
    ("User Name (IAM or Root)", "", ITEM + "User Name (IAM or Root)"),
    ("User Name (IAM or Root)", ["jane"], ITEM + "User Name (IAM or Root)"),
    ("Access Key ID", "akiaiosfodnn7example", ITEM + "Access Key ID"),
    ("Access Key ID", "AKIAIOSFODNN7EXAMPLE ", ITEM + "Access Key ID"),
    ("Access Key ID", "AKIA\u0661\u0662IOSFODNN7EXAM", ITEM + "Access Key ID"),  # Arabic-Indic digits
    ("Access Key ID", None, ITEM + "Access Key ID"),
    ("Case ID", "../../x", ITEM + "Case ID"),
])
def test_trusted_advisor_fields_the_attacker_shapes_are_matched_whole(path, value, field):
    detail = load_example("trustedadvisor-exposed-keys-detail.json")
    detail["check-item-detail"][path] = value
    invalid(ta_event(detail), field)


@pytest.mark.parametrize("changes, field", [
    ({"account": "44445555666\u0666"}, "account"),
    ({"account": "444455556666\n"}, "account"),
    ({"account": None}, "account"),
    ({"detail-type": "Trusted Advisor Pursuit Weekly Digest"}, "detail-type"),
])
def test_the_trusted_advisor_envelope_is_checked(changes, field):
    invalid(ta_event(**changes), field)


def test_another_check_or_status_is_refused_naming_the_field():
    detail = load_example("trustedadvisor-exposed-keys-detail.json")
    invalid(ta_event(dict(detail, **{"check-name": "IAM Use"})), "detail.check-name")
    invalid(ta_event(dict(detail, status="ok")), "detail.status")
    invalid(dict(detail, accountId="4444555566667"), "accountId")
    invalid(dict(detail, accountId=ACCOUNT, extra=1), "extra")


# -- AWS Health --------------------------------------------------------------------------------------------------
def test_health_credentials_exposed_contains_the_keys_owner():
    incident = normalize(load_example("health-credentials-exposed.json"), now=NOW, regions=("eu-west-1",))
    assert incident["incidentId"] == "health-AWS_RISK_CREDENTIALS_EXPOSED_7bf73129"
    assert incident["origin"] == "health" and incident["region"] == "eu-west-1"
    assert incident["identities"] == [{"type": "IAMUser", "accessKeyId": "AKIAIOSFODNN7EXAMPLE"}]  # owner from IAM


def test_health_detail_pasted_bare_takes_its_affected_account():
    detail = load_example("health-credentials-exposed.json")["detail"]
    assert normalize(detail, now=NOW)["accountId"] == ACCOUNT
    del detail["affectedAccount"]
    invalid(detail, "accountId")


@pytest.mark.parametrize("change, field", [
    ({"eventTypeCode": "AWS_EC2_OPERATIONAL_ISSUE"}, "detail.eventTypeCode"),
    ({"affectedEntities": [{"entityValue": "AKIAIOSFODNN7EXAMPL\u0415"}]}, "detail.affectedEntities[0].entityValue"),
    ({"affectedEntities": [{"entityValue": "arn:aws:iam::444455556666:user/x"}]},
     "detail.affectedEntities[0].entityValue"),
    ({"affectedEntities": []}, "detail.affectedEntities"),
    ({"affectedAccount": "111122223333"}, "detail.affectedAccount"),
    ({"eventArn": "arn:aws:health:global::event/IAM/x\n"}, "detail.eventArn"),
])
def test_health_fields_are_matched_whole(change, field):
    event = load_example("health-credentials-exposed.json")
    event["detail"].update(change)
    invalid(event, field)


# -- attack sequences --------------------------------------------------------------------------------------------
def test_attack_sequence_every_instance_key_and_group_becomes_a_target():
    incident = normalize(load_example("guardduty-attack-sequence.json"), now=NOW)
    assert incident["disposition"] == "respond" and incident["resourceType"] == "AttackSequence"
    assert incident["instances"] == ["i-0a1b2c3d4e5f60001", "i-0a1b2c3d4e5f60002", "i-0a1b2c3d4e5f60003"]
    assert incident["identities"] == [{"type": "IAMUser", "name": "ci-deployer", "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
                                       "principalId": "AIDAEXAMPLEPRINCIPAL1"}]  # key and actor: one identity
    assert incident["autoScalingGroups"] == ["web-asg"]
    assert incident["signal"]["kind"] == "attack_sequence" and incident["signal"]["signals"] == 2


def test_an_actor_named_only_in_the_sequence_is_contained_not_invalid():
    event = load_example("guardduty-attack-sequence.json")
    sequence = event["detail"]["service"]["detection"]["sequence"]
    sequence["resources"] = []
    sequence["actors"] = [{"id": "a", "user": {"name": "app-role", "type": "AssumedRole", "uid": "AROAEXAMPLE:sess",
                                               "credentialUid": "ASIAEXAMPLESESSION01",
                                               "account": {"uid": ACCOUNT}},
                           "session": {"issuer": f"arn:aws:iam::{ACCOUNT}:role/service/app-role"}}]
    incident = normalize(event, now=NOW)
    assert incident["disposition"] == "respond"
    assert incident["identities"] == [{"type": "AssumedRole", "name": "app-role", "accessKeyId": "ASIAEXAMPLESESSION01",
                                       "principalId": "AROAEXAMPLE:sess"}]


def test_sequence_targets_elsewhere_are_recorded_not_acted_on():
    event = load_example("guardduty-attack-sequence.json")
    sequence = event["detail"]["service"]["detection"]["sequence"]
    sequence["resources"][0]["accountId"] = "111122223333"
    sequence["resources"][1]["region"] = "us-east-1"
    sequence["actors"][0]["user"]["account"]["uid"] = "111122223333"
    sequence["resources"] = sequence["resources"][:3]
    incident = normalize(event, now=NOW)
    assert incident["instances"] == ["i-0a1b2c3d4e5f60003"] and incident["identities"] == []
    assert len(incident["signal"]["elsewhere"]) == 3
    assert any("not acted on" in line for line in notify.left_out(incident["signal"]))


def test_sequence_over_the_target_cap_is_cut_recorded_and_notified():
    event = load_example("guardduty-attack-sequence.json")
    sequence = event["detail"]["service"]["detection"]["sequence"]
    template = sequence["resources"][0]
    sequence["resources"] = [dict(copy.deepcopy(template), uid=f"i-{n:017x}") for n in range(MAX_TARGETS + 7)]
    incident = normalize(event, now=NOW)
    assert len(incident["instances"]) == MAX_TARGETS
    assert incident["signal"]["omitted"] == {"instances": 7}
    assert "7 instances over the limit" in notify.left_out(incident["signal"])[0]


def test_a_group_name_that_is_not_ascii_is_skipped_with_the_manual_step():
    event = load_example("guardduty-attack-sequence.json")
    group = event["detail"]["service"]["detection"]["sequence"]["resources"][4]
    group["name"] = "web-\u0430sg"
    group["uid"] = ""
    incident = normalize(event, now=NOW)
    assert "autoScalingGroups" not in incident and "by hand" in incident["signal"]["skipped"][0]
    assert len(incident["instances"]) == 3  # the rest is still contained


@pytest.mark.parametrize("where, value, field", [
    (("resources", 0, "uid"), "i-0A1B2C3D4E5F60001", "resources[0].uid"),
    (("resources", 3, "uid"), "AKIAIOSFODNN7EXAMPLE\n", "resources[3].uid"),
    (("resources", 3, "data", "accessKey", "userName"), "ci deployer", "resources[3].data.accessKey.userName"),
    (("actors", 0, "user", "name"), "ci-depl\u043eyer", "actors[0].user.name"),
    (("actors", 0, "user", "account", "uid"), "4444555566\u0666\u0666", "actors[0].user.account.uid"),
])
def test_sequence_fields_are_matched_whole(where, value, field):
    event = load_example("guardduty-attack-sequence.json")
    node = event["detail"]["service"]["detection"]["sequence"]
    for step in where[:-1]:
        node = node[step]
    node[where[-1]] = value
    invalid(event, f"detail.service.detection.sequence.{field}")


def test_a_sequence_that_names_nothing_here_is_not_handled():
    event = load_example("guardduty-attack-sequence.json")
    sequence = event["detail"]["service"]["detection"]["sequence"]
    sequence["resources"], sequence["actors"] = [], []
    incident = normalize(event, now=NOW)
    assert incident["disposition"] == "not_handled" and "names no" in incident["dispositionReason"]


# -- the groups' instances, read from Auto Scaling ---------------------------------------------------------------
def _sequence_incident():
    return normalize(load_example("guardduty-attack-sequence.json"), now=NOW)


LAUNCHED = "2024-06-01T20:00:00Z"  # before the fixture's eventLastSeen (2024-06-02T03:05:00Z)


def test_group_instances_come_from_auto_scaling_not_the_finding():
    incident = expand(_sequence_incident(), lambda names: {
        "web-asg": {"i-0a1b2c3d4e5f60002": LAUNCHED, "i-0fedcba9876543210": LAUNCHED}}, MAX_TARGETS)
    assert incident["instances"][-1] == "i-0fedcba9876543210" and len(incident["instances"]) == 4
    assert incident["signal"]["groupInstances"] == {"web-asg": 2}


def test_replacements_launched_after_the_last_activity_and_gone_instances_are_left_alone():
    incident = expand(_sequence_incident(), lambda names: {"web-asg": {
        "i-0fedcba9876543210": "2024-06-02T03:20:00Z", "i-0fedcba9876543211": "", "i-0fedcba9876543212": LAUNCHED}},
        MAX_TARGETS)
    assert incident["instances"][3:] == ["i-0fedcba9876543212"]
    assert incident["signal"]["launchedAfterActivity"] == 1 and incident["signal"]["gone"] == 1


def test_group_instances_over_the_cap_are_counted():
    many = {f"i-{n:017x}": LAUNCHED for n in range(MAX_TARGETS)}
    incident = expand(_sequence_incident(), lambda names: {"web-asg": many}, MAX_TARGETS)
    assert len(incident["instances"]) == MAX_TARGETS and incident["signal"]["omitted"] == {"instances": 3}


def test_a_missing_or_unreadable_group_is_recorded_and_the_rest_still_contained():
    incident = expand(_sequence_incident(), lambda names: {}, MAX_TARGETS)
    assert incident["signal"]["groupsNotFound"] == ["web-asg"] and len(incident["instances"]) == 3

    def denied(names):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "DescribeAutoScalingGroups")

    incident = expand(_sequence_incident(), denied, MAX_TARGETS)
    assert incident["signal"]["groupsUnread"]["error"] == "AccessDenied" and len(incident["instances"]) == 3
    assert "could not be read" in " ".join(notify.left_out(incident["signal"]))


def test_a_throttled_group_read_is_retried_by_step_functions():
    def throttled(names):
        raise ClientError({"Error": {"Code": "Throttling", "Message": "slow"}}, "DescribeAutoScalingGroups")

    with pytest.raises(TransientAwsError):
        expand(_sequence_incident(), throttled, MAX_TARGETS)


def test_triage_reads_the_groups_before_the_claim_and_only_for_sequences_that_name_them(iam_user_event):
    from responder.settings import Settings
    from responder.triage import triage

    asked, claimed = [], []

    def groups(incident):
        asked.append(incident["incidentId"])
        return lambda names: {"web-asg": {"i-0fedcba9876543210": LAUNCHED}}

    def claim(incident):
        claimed.append(list(incident["instances"]))
        return {"cutoff": incident["cutoff"], "record": {"trigger": "first", "attempt": 1}}

    config = Settings.from_env({"IR_PROTECTED_PRINCIPALS": "", "IR_INCIDENT_TABLE": "incidents"})
    incident = triage(load_example("guardduty-attack-sequence.json"), execution_name="x", execution_id="e",
                      settings=config, claim=claim, groups=groups, now=NOW)
    assert incident["instances"][-1] == "i-0fedcba9876543210" and claimed[0] == incident["instances"]
    triage(iam_user_event, execution_name="x", execution_id="e", settings=config, claim=claim, groups=groups, now=NOW)
    assert asked == [incident["incidentId"]]  # an AccessKey finding reads nothing
