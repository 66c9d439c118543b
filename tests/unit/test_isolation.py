"""Instance isolation without AWS: the pure decisions, and the step logic against fake adapters."""
from __future__ import annotations

import types

import pytest
from botocore.exceptions import ClientError

from responder.aws.ec2 import QUARANTINE, UNTRACK
from responder.errors import AccountAccessError, TransientAwsError
from responder.isolation import (
    cidr_rule,
    desired_rules,
    devices_deleted_on_termination,
    interface_moves,
    isolate,
    permissions_of,
    registrations,
    rule_changes,
    rules_of,
    step_statuses,
    summarize,
)
from responder.settings import Settings

SETTINGS = Settings(protected_principals=("arn:aws:iam::*:role/break-glass-*",))
INCIDENT = {"incidentId": "gd-1", "accountId": "111122223333", "region": "eu-west-1", "partition": "aws",
            "cutoff": "2026-01-01T00:00:10Z", "dryRun": False}


def client_error(code: str, op: str = "Op") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, op)


# -- pure decisions ---------------------------------------------------------------------------------------
def test_rules_round_trip_through_ip_permissions():
    perms = [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
              "Ipv6Ranges": [{"CidrIpv6": "::/0"}], "UserIdGroupPairs": [{"GroupId": "sg-1", "UserId": "1"}],
              "PrefixListIds": [{"PrefixListId": "pl-1"}]},
             {"IpProtocol": "-1", "FromPort": -1, "ToPort": -1, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]
    rules = rules_of(perms)
    assert rules == {("tcp", 22, 22, "cidr", "0.0.0.0/0"), ("tcp", 22, 22, "cidr6", "::/0"),
                     ("tcp", 22, 22, "group", "sg-1"), ("tcp", 22, 22, "prefix", "pl-1"),
                     ("-1", None, None, "cidr", "10.0.0.0/8")}
    assert rules_of(permissions_of(rules)) == rules
    assert {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "10.0.0.0/8"}]} in permissions_of(rules)


def test_quarantine_group_wants_nothing_but_the_isolation_cidrs():
    assert desired_rules(QUARANTINE, ()) == {"ingress": set(), "egress": set()}
    wanted = desired_rules(QUARANTINE, ("10.9.0.0/24", "2001:db8::/64"))
    assert wanted["ingress"] == wanted["egress"] == {("-1", None, None, "cidr", "10.9.0.0/24"),
                                                     ("-1", None, None, "cidr6", "2001:db8::/64")}
    with pytest.raises(ValueError):
        cidr_rule("10.9.0.0/33")


def test_untrack_group_allows_everything_both_ways():
    wanted = desired_rules(UNTRACK, ("10.9.0.0/24",))
    assert wanted["ingress"] == wanted["egress"] == {("-1", None, None, "cidr", "0.0.0.0/0"),
                                                     ("-1", None, None, "cidr6", "::/0")}


def test_rule_changes_revoke_extras_only_on_exact_groups():
    group = {"IpPermissions": [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                                "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
             "IpPermissionsEgress": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]}
    exact = rule_changes(group, desired_rules(QUARANTINE, ()), exact=True)
    assert [(a, d) for a, d, _ in exact] == [("revoke", "ingress"), ("revoke", "egress")]
    loose = rule_changes(group, desired_rules(UNTRACK, ()), exact=False)
    assert [(a, d, len(r)) for a, d, r in loose] == [("authorize", "ingress", 2), ("authorize", "egress", 1)]
    ready = {"IpPermissions": [], "IpPermissionsEgress": []}
    assert rule_changes(ready, desired_rules(QUARANTINE, ()), exact=True) == []


def test_interface_moves_through_the_untrack_group_once():
    assert interface_moves(["sg-app"], "sg-q", "sg-u") == [["sg-u"], ["sg-q"]]
    assert interface_moves(["sg-app", "sg-q"], "sg-q", "sg-u") == [["sg-u"], ["sg-q"]]
    assert interface_moves(["sg-u"], "sg-q", "sg-u") == [["sg-q"]]
    assert interface_moves(["sg-q"], "sg-q", "sg-u") == []


def test_registrations_pick_the_instance_and_skip_leaving_targets():
    def d(target_id, port, state, reason=None):
        health = {"State": state, **({"Reason": reason} if reason else {})}
        return {"Target": {"Id": target_id, "Port": port}, "TargetHealth": health}

    found = [d("i-1", 80, "healthy"), d("i-1", 81, "unhealthy"), d("i-1", 82, "draining"),
             d("i-1", 83, "unused", "Target.NotRegistered"), d("i-1", 84, "unused", "Target.NotInUse"),
             d("i-2", 80, "healthy")]
    assert registrations(found, "i-1", set(), "instance") == [{"Id": "i-1", "Port": p} for p in (80, 81, 84)]
    ips = [d("10.0.0.5", 80, "healthy"), d("10.0.0.6", 80, "healthy")]
    assert registrations(ips, "i-1", {"10.0.0.5"}, "ip") == [{"Id": "10.0.0.5", "Port": 80}]


def test_step_statuses_worst_first_in_step_order():
    entries = [{"step": "tag", "status": "done"}, {"step": "capture_metadata", "status": "unchanged"},
               {"step": "network_isolation", "status": "done"}, {"step": "network_isolation", "status": "failed"},
               {"step": None, "status": "not_found"}]
    assert step_statuses(entries) == {"capture_metadata": "unchanged", "network_isolation": "failed", "tag": "done"}
    assert list(step_statuses(entries)) == ["capture_metadata", "network_isolation", "tag"]


def test_only_volumes_deleted_on_termination_are_changed():
    instance = {"BlockDeviceMappings": [
        {"DeviceName": "/dev/xvda", "Ebs": {"VolumeId": "vol-1", "DeleteOnTermination": True}},
        {"DeviceName": "/dev/sdf", "Ebs": {"VolumeId": "vol-2", "DeleteOnTermination": False}}]}
    assert devices_deleted_on_termination(instance) == ["/dev/xvda"]


# -- the steps against fakes ------------------------------------------------------------------------------
def instance(**changes) -> dict:
    base = {
        "InstanceId": "i-1", "State": {"Name": "running"}, "Tags": [{"Key": "Environment", "Value": "prod"}],
        "IamInstanceProfile": {"Arn": "arn:aws:iam::111122223333:instance-profile/app"},
        "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeId": "vol-1", "DeleteOnTermination": True}}],
        "NetworkInterfaces": [
            {"NetworkInterfaceId": "eni-b", "VpcId": "vpc-b", "Attachment": {"DeviceIndex": 1},
             "Groups": [{"GroupId": "sg-b"}], "PrivateIpAddress": "10.2.0.5"},
            {"NetworkInterfaceId": "eni-a", "VpcId": "vpc-a", "Attachment": {"DeviceIndex": 0},
             "Groups": [{"GroupId": "sg-a"}], "PrivateIpAddress": "10.1.0.5"}],
    }
    return {**base, **changes}


class FakeAws:
    """Every adapter at once; changes are journaled like the real adapters do."""

    def __init__(self, journal, described, *, role_tags=None, fail=()):
        self.j, self.described, self.fail, self.role_tags = journal, described, set(fail), role_tags or []
        self.ec2 = self.autoscaling = self.classic = self.target_groups = self.iam = self

    def _change(self, api, target):
        if api in self.fail:
            self.j._add(status="failed", api=api, target=target, error="AccessDenied", message="denied")
            raise client_error("AccessDenied")
        self.j.note("planned" if self.j.dry_run else "done", target, api=api)

    # ec2
    def describe_instance(self, instance_id):
        if isinstance(self.described, Exception):
            raise self.described
        return self.described

    def attribute(self, instance_id, name):
        return {"disableApiTermination": False, "instanceInitiatedShutdownBehavior": "terminate"}[name]

    def enable_termination_protection(self, i): self._change("ec2:DisableApiTermination", i)
    def stop_on_shutdown(self, i): self._change("ec2:Shutdown", i)
    def keep_volumes(self, i, devices): self._change("ec2:DeleteOnTermination", i)

    def isolation_groups(self, vpcs):
        return [{"GroupId": f"sg-{p[0]}-{v}", "VpcId": v, "Tags": [{"Key": "ir:purpose", "Value": p}],
                 "IpPermissions": [], "IpPermissionsEgress": [] if p == QUARANTINE else [
                     {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}]}
                for v in vpcs for p in (QUARANTINE, UNTRACK)]

    def authorize(self, gid, direction, perms): self._change("ec2:Authorize", gid)
    def revoke(self, gid, direction, perms): self._change("ec2:Revoke", gid)
    def set_interface_groups(self, eni, groups): self._change("ec2:ModifyNetworkInterfaceAttribute", eni)
    def set_connection_tracking(self, eni, spec): self._change("ec2:ConnectionTracking", eni)
    def network_acls(self, vpcs): return []
    def subnet_cidrs(self, vpcs): return {}

    def profile_associations(self, i):
        return [{"AssociationId": "a-1", "IamInstanceProfile": {"Arn": "arn:aws:iam::1:instance-profile/app"}}]

    def replace_profile(self, assoc, name, *, target): self._change("ec2:ReplaceIamInstanceProfileAssociation", target)
    def tag(self, i, tags): self._change("ec2:CreateTags", i)

    # autoscaling / elb
    def membership(self, i): return None
    def holding(self, i): return []
    def candidates(self, vpcs): return []

    # iam
    def instance_profile(self, name):
        return {"Roles": [{"RoleName": "break-glass-app" if self.role_tags == "break" else "app-role"}]}

    def get_role(self, name):
        return {"RoleName": name, "Arn": f"arn:aws:iam::111122223333:role/{name}", "Tags": []}

    def role_policy(self, role, policy): return None
    def put_role_policy(self, role, name, doc, *, target): self._change("iam:PutRolePolicy", target)


def run(described, *, evidence=None, incident=INCIDENT, **fake):
    built = {}

    def adapters_for(journal):
        aws = FakeAws(journal, described, **fake)
        aws.evidence = evidence(journal) if callable(evidence) else evidence
        built["aws"] = aws
        return aws

    return isolate("i-1", incident, adapters_for=adapters_for, settings=SETTINGS)


def test_every_interface_in_every_vpc_is_moved_through_untrack_to_quarantine():
    result = run(instance())
    moves = [(e["target"]) for e in result["entries"] if e.get("api") == "ec2:ModifyNetworkInterfaceAttribute"]
    assert moves == ["eni-a", "eni-a", "eni-b", "eni-b"]  # primary first
    assert result["status"] == "isolated"
    assert result["metadata"]["vpcIds"] == ["vpc-a", "vpc-b"] and result["metadata"]["evidence"] is None


def test_transient_describe_error_is_retried_by_the_state_machine():
    with pytest.raises(TransientAwsError):
        run(client_error("RequestLimitExceeded", "DescribeInstances"))


def test_denied_describe_fails_closed_without_any_change():
    result = run(client_error("UnauthorizedOperation", "DescribeInstances"))
    assert result["status"] == "protection_unverified"
    assert [e["status"] for e in result["entries"]] == ["protected"]


def test_shutting_down_instance_is_not_found():
    assert run(instance(State={"Name": "shutting-down"}))["status"] == "not_found"


def test_instance_matching_a_protected_pattern_is_untouched():
    settings = Settings(protected_principals=("arn:aws:ec2:*:*:instance/i-1",))
    result = isolate("i-1", INCIDENT, adapters_for=lambda j: FakeAws(j, instance()), settings=settings)
    assert result["status"] == "protected" and "protected pattern" in result["reason"]
    assert [e["status"] for e in result["entries"]] == ["protected"]


def test_forensics_account_unreachable_fails_the_capture_but_containment_goes_on():
    class Unreachable(FakeAws):
        @property
        def evidence(self):
            raise AccountAccessError("cannot assume the forensics role")

        @evidence.setter
        def evidence(self, value):
            pass

    result = isolate("i-1", INCIDENT, adapters_for=lambda j: Unreachable(j, instance()), settings=SETTINGS)
    assert result["status"] == "failed" and result["error"] == "AccountAccessError"
    assert result["steps"]["capture_metadata"] == "failed"
    assert result["steps"]["network_isolation"] == "done" and result["steps"]["instance_profile"] == "done"


def test_protected_role_keeps_its_sessions_but_the_profile_is_still_swapped():
    result = run(instance(), role_tags="break")
    assert result["steps"]["revoke_older_sessions"] == "protected"
    assert result["steps"]["instance_profile"] == "done"
    assert not [e for e in result["entries"] if e.get("api") == "iam:PutRolePolicy"]


def test_a_failed_call_fails_its_step_only_and_is_reported():
    result = run(instance(), fail={"ec2:DisableApiTermination"})
    assert result["status"] == "failed"
    assert result["error"] == "AccessDenied" and result["message"].startswith("termination_protection on i-1")
    assert {s for s, v in result["steps"].items() if v == "failed"} == {"termination_protection"}
    tag = [e for e in result["entries"] if e.get("api") == "ec2:CreateTags"]
    assert tag and tag[0]["status"] == "done"


def test_dry_run_plans_and_is_planned():
    result = run(instance(), incident={**INCIDENT, "dryRun": True})
    assert result["status"] == "planned"
    assert {e["status"] for e in result["entries"] if e.get("api")} == {"planned"}


def test_summary_keeps_what_evidence_collection_needs():
    meta = summarize(instance())
    assert meta["volumes"] == [{"volumeId": "vol-1", "deviceName": "/dev/xvda", "deleteOnTermination": True}]
    assert [i["networkInterfaceId"] for i in meta["interfaces"]] == ["eni-a", "eni-b"]
    assert meta["instanceProfileArn"].endswith("/app") and meta["tags"] == {"Environment": "prod"}


def test_handler_is_thin_and_lean():
    import handlers.isolate as handler

    assert isinstance(handler.handler, types.FunctionType)
    source = open(handler.__file__).read()
    assert "boto3.client(" not in source and "os.environ" not in source
