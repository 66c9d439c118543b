"""The forensic workstation's pure decisions (responder.workstation): the request, the workstation and image
checks, which copies may be opened, device names, the live-response rule, the outcome."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from responder import workstation as ws
from responder.errors import InvalidInput
from responder.triage import normalize

ACCOUNT = "999988887777"
NOW = datetime(2026, 12, 3, 8, 0, tzinfo=timezone.utc)
I = "i-0123456789abcdef0"


def request(**changes):
    body = {"incidentId": "IR-1", "reason": "open the disks", "workstation": {"instanceId": I}}
    body.update(changes)
    return {"analyze": body}


def test_an_instance_request_becomes_an_analyze_incident():
    incident = normalize(request(liveResponse={"port": 22}), now=NOW)
    assert incident["origin"] == incident["disposition"] == "analyze"
    assert incident["analyze"] == {"workstation": {"instanceId": I}, "liveResponse": {"port": 22}}
    assert incident["identities"] == incident["instances"] == [] and incident["dryRun"] is False


def test_an_image_request_keeps_exactly_its_fields():
    incident = normalize(request(workstation={"imageId": "ami-0123456789abcdef0", "instanceType": "c5.4xlarge",
                                              "subnetId": "subnet-0123456789abcdef0",
                                              "securityGroupIds": ["sg-0123456789abcdef0"] * 2,
                                              "keyName": "forensicPublicKey"}), now=NOW)
    assert incident["analyze"]["workstation"]["securityGroupIds"] == ["sg-0123456789abcdef0"]
    assert incident["analyze"]["liveResponse"] is None


@pytest.mark.parametrize("body, field", [
    ({"analyze": "IR-1"}, "analyze"),
    ({"analyze": {"reason": "x", "workstation": {"instanceId": I}}}, "analyze.incidentId"),
    (request(reason=None), "analyze.reason"),
    (request(workstation=None), "analyze.workstation"),
    (request(workstation={}), "analyze.workstation"),
    (request(workstation={"instanceId": I, "imageId": "ami-0123456789abcdef0"}), "analyze.workstation.imageId"),
    (request(workstation={"instanceId": I + "\n"}), "analyze.workstation.instanceId"),
    (request(workstation={"imageId": "ami-0123456789abcdef0", "instanceType": "c5.large"}),
     "analyze.workstation.subnetId"),
    (request(workstation={"imageId": "ami-0123456789abcdef0", "instanceType": "c5.large; rm",
                          "subnetId": "subnet-0123456789abcdef0"}), "analyze.workstation.instanceType"),
    (request(workstation={"imageId": "ami-0123456789abcdef0", "instanceType": "c5.large",
                          "subnetId": "subnet-0123456789abcdef0", "securityGroupIds": ["sg-1"] * 6}),
     "analyze.workstation.securityGroupIds"),
    (request(liveResponse={"port": 0}), "analyze.liveResponse.port"),
    (request(liveResponse={"port": True}), "analyze.liveResponse.port"),
    (request(liveResponse={"port": 22, "cidr": "0.0.0.0/0"}), "analyze.liveResponse.cidr"),
    (request(liveResponse={"ports": [22, 80]}), "analyze.liveResponse.ports"),
    (request(dryRun="yes"), "analyze.dryRun"),
    (request(incidentId="x" * 200), "analyze.incidentId"),
    (request(reason="r" * 5000), "analyze.reason"),
    ({**request(), "manual": {}}, "analyze"),  # a manual request names the key beside it
    ({**request(), "extra": 1}, "extra"),
])
def test_bad_requests_name_the_field(body, field):
    with pytest.raises(InvalidInput) as caught:
        normalize(body, now=NOW)
    assert caught.value.field == field, caught.value


def test_the_record_gives_account_region_and_instances_and_must_exist_and_be_ended():
    incident = normalize(request(), now=NOW)
    with pytest.raises(InvalidInput, match="no incident"):
        ws.with_record(dict(incident), None)
    with pytest.raises(InvalidInput, match="in progress"):
        ws.with_record(dict(incident), {"status": "in_progress", "accountId": "1" * 12, "region": "eu-west-1"})
    done = ws.with_record(incident, {"status": "contained", "accountId": "444455556666", "region": "eu-west-1",
                                     "targets": {"instances": ["i-0aaaaaaaaaaaaaaaa"]}})
    assert (done["accountId"], done["region"], done["partition"]) == ("444455556666", "eu-west-1", "aws")
    assert done["analyze"]["instances"] == ["i-0aaaaaaaaaaaaaaaa"]


def tagged(value):
    return [{"Key": "ir:purpose", "Value": value}]


@pytest.mark.parametrize("instance, why", [
    (None, "no such instance"),
    ({"OwnerId": "111122223333", "Tags": tagged("forensic-workstation")}, "belongs to account 111122223333"),
    ({"OwnerId": ACCOUNT, "Tags": []}, "not tagged"),
    ({"OwnerId": ACCOUNT, "Tags": tagged("Forensic-Workstation")}, "not tagged"),
    ({"OwnerId": ACCOUNT, "Tags": tagged("forensic-workstation"), "State": {"Name": "terminated"}}, "terminated"),
])
def test_a_workstation_must_be_the_forensics_accounts_tagged_instance(instance, why):
    assert why in ws.workstation_refusal(instance, ACCOUNT)


def test_a_tagged_own_instance_is_a_workstation():
    assert ws.workstation_refusal({"OwnerId": ACCOUNT, "Tags": tagged("forensic-workstation"),
                                   "State": {"Name": "running"}}, ACCOUNT) is None


def test_an_image_must_be_owned_by_the_forensics_account_and_tagged():
    assert "no such image" in ws.image_refusal(None, ACCOUNT)
    assert "owned by 1" in ws.image_refusal({"OwnerId": "1" * 12, "Tags": tagged("forensic-workstation")}, ACCOUNT)
    assert "not tagged" in ws.image_refusal({"OwnerId": ACCOUNT, "Tags": tagged("x")}, ACCOUNT)
    assert ws.image_refusal({"OwnerId": ACCOUNT, "Tags": tagged("forensic-workstation"), "State": "available"},
                            ACCOUNT) is None


RECORD = {"results": {"evidence:i-0aaaaaaaaaaaaaaaa": {"snapshots": [
    {"stage": "done", "volumeId": "vol-1", "device": "/dev/xvda", "digest": "sha256:aa",
     "forensicsCopy": {"snapshotId": "snap-1"}},
    {"stage": "failed", "volumeId": "vol-2", "forensicsCopy": {"snapshotId": "snap-2"}},
    {"stage": "done", "volumeId": "vol-3", "digest": "sha256:cc", "forensicsCopy": {"snapshotId": "snap-3"}},
]}, "isolation:i-0aaaaaaaaaaaaaaaa": {"snapshots": [{"stage": "done"}]}}}


def snap(sid, digest, *, owner=ACCOUNT, incident="IR-1", state="completed"):
    return {"SnapshotId": sid, "OwnerId": owner, "State": state, "VolumeSize": 4,
            "Tags": [{"Key": "ir:incident", "Value": incident}, {"Key": "ir:hash", "Value": digest}]}


def test_only_verified_copies_of_the_record_are_opened():
    expected = ws.expected_copies(RECORD)
    assert sorted(expected) == ["snap-1", "snap-3"]  # a failed chain is not evidence to open
    usable, refused = ws.verify_copies(expected, [
        snap("snap-1", "sha256:aa"),
        snap("snap-3", "sha256:XX"),  # the tag differs from the verified digest
        snap("snap-9", "sha256:aa"),  # tagged with the incident but not a copy the record lists
        snap("snap-8", "sha256:aa", owner="444455556666"),  # shared into the account, not its own
    ], incident_id="IR-1", account=ACCOUNT)
    assert [u["snapshotId"] for u in usable] == ["snap-1"] and usable[0]["volumeId"] == "vol-1"
    reasons = {r["snapshotId"]: r["reason"] for r in refused}
    assert set(reasons) == {"snap-3", "snap-8", "snap-9"}
    assert "differs" in reasons["snap-3"] and "owned by" in reasons["snap-8"] and "not a forensics copy" in reasons["snap-9"]


def test_a_copy_the_record_lists_but_the_account_does_not_own_is_named():
    usable, refused = ws.verify_copies(ws.expected_copies(RECORD), [snap("snap-1", "sha256:aa")],
                                       incident_id="IR-1", account=ACCOUNT)
    assert [r["snapshotId"] for r in refused] == ["snap-3"] and len(usable) == 1


def test_device_names_skip_what_is_in_use_xen_names_included():
    assert ws.free_devices({"/dev/xvda", "/dev/sdf", "/dev/xvdg"}, 2) == ["/dev/sdh", "/dev/sdi"]
    assert ws.free_devices(set(ws.DEVICES), 1) == []


def test_the_live_response_rule_is_one_port_from_one_address():
    rule = ws.live_rule("10.0.0.5", 22)
    assert rule == {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.5/32"}]}
    assert ws.has_rule({"IpPermissions": [rule]}, "10.0.0.5", 22)
    assert not ws.has_rule({"IpPermissions": [rule]}, "10.0.0.5", 23)
    wide = {"IpProtocol": "tcp", "FromPort": 0, "ToPort": 65535, "IpRanges": [{"CidrIp": "10.0.0.5/32"}]}
    assert not ws.has_rule({"IpPermissions": [wide]}, "10.0.0.5", 22)


def test_waits_double_to_a_cap_and_tokens_are_stable_and_short():
    assert [ws.wait_seconds(n) for n in range(5)] == [10, 20, 40, 60, 60]
    assert ws.token("IR-1", I, "snap-1") == ws.token("IR-1", I, "snap-1") != ws.token("IR-1", I, "snap-2")
    assert len(ws.token("x" * 500)) <= 64


@pytest.mark.parametrize("status, outcome, fail", [
    ("ready", "analysis_ready", False), ("planned", "dry_run_plan", False),
    ("refused", "analysis_refused", True), ("incomplete", "analysis_incomplete", True),
    ("failed", "analysis_failed", True)])
def test_outcomes(status, outcome, fail):
    from responder.outcome import decide

    found = decide({"incident": {"disposition": "analyze", "incidentId": "IR-1"},
                    "analysis": {"summary": {"status": status}}})
    assert (found["outcome"], found["fail"]) == (outcome, fail)


def test_a_crashed_analysis_task_is_a_failed_analysis():
    from responder.outcome import decide

    found = decide({"incident": {"disposition": "analyze"},
                    "failure": {"task": "analysis", "error": "Boom", "cause": "x"}})
    assert found["outcome"] == "analysis_failed" and found["fail"]


def test_manifest_names_sit_beside_the_attempts_manifests():
    keys = ws.manifest_keys("IR-1", "exec-1", 2)
    assert keys == ["incidents/IR-1/manifest-analysis-exec-1.json", "incidents/IR-1/manifest-analysis-exec-1-2.json"]
