"""Triage turns the three accepted inputs into one incident, or fails naming the field."""
from datetime import datetime, timezone

import pytest

from responder.errors import IncidentRecordError, InvalidInput
from responder.settings import Settings
from responder.triage import cutoff_from, normalize, switches, triage

NOW = datetime(2024, 6, 2, 2, 0, 0, 250000, tzinfo=timezone.utc)


def test_iam_user_event_gives_one_user_identity(iam_user_event):
    incident = normalize(iam_user_event, now=NOW)
    assert incident["incidentId"] == "gd-a2c6e5f0b8d94f6c9e1b7a3d5f2c8e41"
    assert incident["accountId"] == "444455556666" and incident["region"] == "eu-west-1"
    assert incident["identities"] == [{"type": "IAMUser", "name": "ci-deployer",
                                       "accessKeyId": "AKIAIOSFODNN7EXAMPLE", "principalId": "AIDAEXAMPLEPRINCIPAL1"}]
    assert incident["instances"] == [] and incident["disposition"] == "respond"


def test_cutoff_is_utc_now_rounded_up_to_the_second():
    assert normalize({"manual": {"accountId": "111122223333", "region": "us-east-1", "reason": "r",
                                 "iamUsers": ["u"], "incidentId": "IR-1"}}, now=NOW)["cutoff"] == "2024-06-02T02:00:01Z"
    assert cutoff_from(datetime(2024, 6, 2, 2, 0, 0, tzinfo=timezone.utc)) == "2024-06-02T02:00:00Z"


def test_credentials_from_an_instance_give_both_branches(instance_credentials_event):
    incident = normalize(instance_credentials_event, now=NOW)
    assert [i["type"] for i in incident["identities"]] == ["AssumedRole"]
    assert incident["identities"][0]["name"] == "api-server-role"
    assert incident["instances"] == ["i-0a1b2c3d4e5f60718"]


def test_bare_finding_in_event_detail_shape(instance_event):
    incident = normalize(instance_event["detail"], now=NOW)
    assert incident["instances"] == ["i-0a1b2c3d4e5f60718"] and incident["identities"] == []


def test_bare_finding_as_get_findings_prints_it(iam_user_event):
    def pascal(value):
        if isinstance(value, dict):
            return {k[:1].upper() + k[1:]: pascal(v) for k, v in value.items()}
        if isinstance(value, list):
            return [pascal(v) for v in value]
        return value

    incident = normalize({"Findings": [pascal(iam_user_event["detail"])]}, now=NOW)
    assert incident["identities"][0]["name"] == "ci-deployer"
    assert incident["incidentId"] == "gd-a2c6e5f0b8d94f6c9e1b7a3d5f2c8e41"


def test_s3_finding_contains_its_actor_like_an_access_key_finding(iam_user_event):
    # issue 14: S3 findings that carry accessKeyDetails are no longer not_handled (tests/unit/test_signals.py)
    iam_user_event["detail"]["resource"]["resourceType"] = "S3Bucket"
    incident = normalize(iam_user_event, now=NOW)
    assert incident["disposition"] == "respond"
    assert [i["name"] for i in incident["identities"]] == ["ci-deployer"]


def test_an_unhandled_resource_type_is_not_handled(iam_user_event):
    iam_user_event["detail"]["resource"]["resourceType"] = "EKSCluster"
    incident = normalize(iam_user_event, now=NOW)
    assert incident["disposition"] == "not_handled" and "EKSCluster" in incident["dispositionReason"]
    assert incident["identities"] == []


def test_sample_findings_are_never_acted_on(iam_user_event):
    iam_user_event["detail"]["service"]["additionalInfo"] = {"sample": True, "type": "default", "value": "{}"}
    assert normalize(iam_user_event, now=NOW)["disposition"] == "not_handled"


def test_manual_request(now=NOW):
    incident = normalize({"manual": {"accountId": "111122223333", "region": "us-east-1", "reason": "phished",
                                     "iamUsers": ["svc-build"], "roles": ["app-role"], "instances": ["i-0abc1234"],
                                     "incidentId": "IR-2024-0602", "dryRun": True}}, now=now)
    assert incident["incidentId"] == "IR-2024-0602" and incident["dryRun"] is True
    assert incident["identities"] == [{"type": "IAMUser", "name": "svc-build"}, {"type": "AssumedRole", "name": "app-role"}]
    assert incident["instances"] == ["i-0abc1234"]


def test_manual_request_without_id_takes_the_execution_name():
    incident = normalize({"manual": {"accountId": "111122223333", "region": "us-east-1", "reason": "r",
                                     "roles": ["x"]}}, execution_name="night-shift-1", now=NOW)
    assert incident["incidentId"] == "manual-night-shift-1"


@pytest.mark.parametrize("mutate, field", [
    (lambda e: e.__setitem__("source", "aws.s3"), "source"),
    (lambda e: e.__setitem__("detail-type", "AWS API Call via CloudTrail"), "detail-type"),
    (lambda e: e["detail"].__setitem__("severity", "8"), "detail.severity"),
    (lambda e: e["detail"].__setitem__("accountId", "4444"), "detail.accountId"),
    (lambda e: e["detail"].pop("id"), "detail.id"),
    (lambda e: e["detail"]["resource"].pop("accessKeyDetails"), "detail.resource.accessKeyDetails"),
    (lambda e: e["detail"]["resource"]["accessKeyDetails"].__setitem__("userName", "bad name;rm"),
     "detail.resource.accessKeyDetails.userName"),
])
def test_bad_event_names_the_field(iam_user_event, mutate, field):
    mutate(iam_user_event)
    with pytest.raises(InvalidInput) as err:
        normalize(iam_user_event, now=NOW)
    assert err.value.field == field


@pytest.mark.parametrize("request_, field", [
    ({"accountId": "111122223333", "region": "us-east-1", "reason": "r", "iamUsers": ["u"], "color": "red"},
     "manual.color"),
    ({"accountId": "111122223333", "region": "us-east-1", "iamUsers": ["u"]}, "manual.reason"),
    ({"accountId": "111122223333", "region": "us-east-1", "reason": "r"}, "manual.iamUsers"),
    ({"accountId": "111122223333", "region": "us-east-1", "reason": "r", "instances": ["vol-1"]}, "manual.instances[0]"),
    ({"accountId": "111122223333", "region": "us-east-1", "reason": "r", "roles": ["r"], "dryRun": "yes"},
     "manual.dryRun"),
    ({"accountId": "111122223333", "region": "mars", "reason": "r", "roles": ["r"]}, "manual.region"),
])
def test_bad_manual_request_names_the_field(request_, field):
    with pytest.raises(InvalidInput) as err:
        normalize({"manual": request_}, execution_name="x", now=NOW)
    assert err.value.field == field


@pytest.mark.parametrize("value", [None, [], "text", 42, {}, {"hello": 1}])
def test_unrecognised_input_is_rejected(value):
    with pytest.raises(InvalidInput):
        normalize(value, now=NOW)


# -- the task's decisions (responder.triage.triage): no AWS, the claim is a plain function ----------------------
def _settings(**env) -> Settings:
    return Settings.from_env({"IR_PROTECTED_PRINCIPALS": "", "IR_INCIDENT_TABLE": "incidents", **env})


def _claim(calls: list, cutoff: str | None = None):
    def claim(incident: dict) -> dict:
        calls.append(dict(incident))
        return {"cutoff": cutoff or incident["cutoff"], "record": {"trigger": "first", "attempt": 1}}
    return claim


def test_observe_only_makes_every_incident_a_dry_run_before_it_is_claimed(iam_user_event):
    claimed: list = []
    incident = triage(iam_user_event, execution_name="x", execution_id="arn:exec", now=NOW,
                      settings=_settings(IR_OBSERVE_ONLY="true"), claim=_claim(claimed))
    assert incident["dryRun"] is True and incident["observeOnly"] is True
    assert claimed[0]["dryRun"] is True and claimed[0]["executionId"] == "arn:exec"  # the record says so too
    assert switches(_settings()) == {}


def test_a_protection_configuration_error_is_carried_by_the_incident(iam_user_event):
    config = Settings.from_env({"IR_INCIDENT_TABLE": "incidents"})  # IR_PROTECTED_PRINCIPALS absent: fail closed
    incident = triage(iam_user_event, execution_name="x", execution_id="e", now=NOW, settings=config,
                      claim=_claim([]))
    assert incident["protectionConfigError"] == "IR_PROTECTED_PRINCIPALS is not configured"
    assert "observeOnly" not in incident and incident["dryRun"] is False


def test_the_window_runs_from_first_sighting_to_the_pinned_cutoff(iam_user_event):
    # a retried execution gets the first attempt's cut-off from the record: the window ends there, not at now
    incident = triage(iam_user_event, execution_name="x", execution_id="e", now=NOW, settings=_settings(),
                      claim=_claim([], cutoff="2024-06-02T01:00:00Z"))
    assert incident["cutoff"] == "2024-06-02T01:00:00Z"
    assert incident["window"] == {"start": "2024-06-01T01:00:00Z", "end": "2024-06-02T01:00:00Z"}
    iam_user_event["detail"]["service"]["eventFirstSeen"] = "2024-05-30T10:00:00Z"
    incident = triage(iam_user_event, execution_name="x", execution_id="e", now=NOW, settings=_settings(),
                      claim=_claim([]))
    assert incident["window"] == {"start": "2024-05-30T10:00:00Z", "end": "2024-06-02T02:00:01Z"}


def test_bad_input_and_a_missing_table_fail_before_the_claim(iam_user_event):
    claimed: list = []
    with pytest.raises(InvalidInput):
        triage({"manual": {}}, execution_name="x", execution_id="e", settings=_settings(), claim=_claim(claimed))
    with pytest.raises(IncidentRecordError, match="IR_INCIDENT_TABLE"):
        triage(iam_user_event, execution_name="x", execution_id="e", settings=_settings(IR_INCIDENT_TABLE=""),
               claim=_claim(claimed))
    assert claimed == []
