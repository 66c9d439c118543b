"""Helpers for the reliability suite (fault injection on the instance branch, replays): a light web-tier instance,
a complete read-back of what the responder could change in the member and forensics accounts, a diff of two
read-backs, and test-only interceptors of the handlers' AWS calls that `tests.worlds.faults.inject` does not offer (act
just before a call, fail only a later call, lose a response after the call was made).

Everything acts in the in-memory AWS of `state_machines.local`; nothing here is used by production code.
"""
from __future__ import annotations

import json
import re
import uuid
from contextlib import contextmanager
from typing import Any, Callable, Iterator
from unittest import mock

from botocore.client import BaseClient
from botocore.exceptions import ClientError

from state_machines import local
from tests.worlds.evidence import finalize_output, instance_detail

EC2_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
APP_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}]}
# evidence-bucket documents every acting attempt writes anew: its own write-once manifest and signature
# (manifest-<attempt>[.sig].json, responder.custody), a new version of each CloudTrail capture
PER_ATTEMPT = ("/manifest-", "/cloudtrail/", "/report-")  # the report: one per acting attempt, beside its manifest


# --------------------------------------------------------------------------------------------------------
# A web-tier instance: everything isolation acts on, with small volumes (evidence stays fast)
# --------------------------------------------------------------------------------------------------------
_IMAGES: dict[tuple, str] = {}


def _image(dep: Any) -> str:
    key = (dep.state_machine_arn, dep.member_account)
    if key not in _IMAGES:
        ec2 = dep.client("ec2")
        images = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["amzn2-ami-*"]}])["Images"]
        _IMAGES[key] = (sorted(images, key=lambda i: i["ImageId"])[0]["ImageId"] if images else
                        ec2.register_image(Name="web-base", RootDeviceName="/dev/xvda", Architecture="x86_64",
                                           VirtualizationType="hvm")["ImageId"])
    return _IMAGES[key]


def web_instance(dep: Any, *, volumes: tuple[str, ...] = ("plain",)) -> dict[str, Any]:
    """In a VPC of its own (so the quarantine groups are created for it): an instance with an instance profile
    (role with an inline policy), in an Auto Scaling group, registered with a Classic load balancer and an ALB
    target group, one 1 GiB volume per entry of `volumes` ("plain" unencrypted, "aws-ebs" under the AWS managed
    key, "customer" under a workload key), each deleted on termination. Returns the ids."""
    name = f"rw{uuid.uuid4().hex[:8]}"
    region = dep.region
    ec2, iam, kms = dep.client("ec2"), dep.client("iam"), dep.client("kms")
    elb, elbv2, asg = dep.client("elb"), dep.client("elbv2"), dep.client("autoscaling")
    octet = 10 + len(ec2.describe_vpcs()["Vpcs"]) % 240
    vpc_id = ec2.create_vpc(CidrBlock=f"10.{octet}.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.{octet}.{i}.0/24",
                                 AvailabilityZone=f"{region}{az}")["Subnet"]["SubnetId"]
               for i, az in ((1, "a"), (2, "b"))]
    app_sg = ec2.create_security_group(GroupName=f"{name}-app", Description="app", VpcId=vpc_id)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=app_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])

    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=json.dumps(EC2_TRUST))["Role"]
    iam.put_role_policy(RoleName=role["RoleName"], PolicyName="app", PolicyDocument=json.dumps(APP_POLICY))
    profile = iam.create_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=role["RoleName"])

    mappings = []
    key = None
    for n, kind in enumerate(volumes):
        ebs: dict[str, Any] = {"VolumeSize": 1, "DeleteOnTermination": True}
        if kind == "aws-ebs":
            ebs["Encrypted"] = True
        elif kind == "customer":
            key = key or kms.create_key(Description=f"{name} data")["KeyMetadata"]["Arn"]
            ebs.update(Encrypted=True, KmsKeyId=key)
        mappings.append({"DeviceName": "/dev/xvda" if n == 0 else f"/dev/sd{chr(ord('f') + n - 1)}", "Ebs": ebs})
    instance_id = ec2.run_instances(
        ImageId=_image(dep), MinCount=1, MaxCount=1, InstanceType="t3.micro", SubnetId=subnets[0],
        SecurityGroupIds=[app_sg], IamInstanceProfile={"Name": name}, BlockDeviceMappings=mappings,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": f"{name}-web"},
                                                                 {"Key": "Environment", "Value": "production"}]}],
    )["Instances"][0]["InstanceId"]
    described = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    devices = {b["DeviceName"]: b["Ebs"]["VolumeId"] for b in described["BlockDeviceMappings"]}

    clb = f"{name}-clb"
    elb.create_load_balancer(LoadBalancerName=clb, Subnets=subnets, SecurityGroups=[app_sg],
                             Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 80}])
    elb.register_instances_with_load_balancer(LoadBalancerName=clb, Instances=[{"InstanceId": instance_id}])
    alb = elbv2.create_load_balancer(Name=f"{name}-alb", Subnets=subnets, SecurityGroups=[app_sg],
                                     Type="application")["LoadBalancers"][0]
    tg = elbv2.create_target_group(Name=f"{name}-tg", Protocol="HTTP", Port=80, VpcId=vpc_id,
                                   TargetType="instance")["TargetGroups"][0]
    elbv2.create_listener(LoadBalancerArn=alb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                          DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])
    elbv2.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": instance_id, "Port": 80}])
    ec2.create_launch_template(LaunchTemplateName=f"{name}-lt", LaunchTemplateData={
        "ImageId": _image(dep), "InstanceType": "t3.micro", "SecurityGroupIds": [app_sg]})
    group = f"{name}-asg"
    asg.create_auto_scaling_group(AutoScalingGroupName=group, MinSize=0, MaxSize=3, DesiredCapacity=0,
                                  LaunchTemplate={"LaunchTemplateName": f"{name}-lt", "Version": "$Latest"},
                                  VPCZoneIdentifier=",".join(subnets))
    asg.attach_instances(InstanceIds=[instance_id], AutoScalingGroupName=group)
    return {"name": name, "instanceId": instance_id, "vpcId": vpc_id, "securityGroupId": app_sg,
            "roleName": role["RoleName"], "roleArn": role["Arn"], "instanceProfile": name,
            "instanceProfileArn": profile["Arn"], "classicLoadBalancer": clb, "targetGroupArn": tg["TargetGroupArn"],
            "autoScalingGroup": group, "volumes": [devices[m["DeviceName"]] for m in mappings],
            "eni": described["NetworkInterfaces"][0]["NetworkInterfaceId"]}


# --------------------------------------------------------------------------------------------------------
# Read-back of everything the responder could change
# --------------------------------------------------------------------------------------------------------
def _tags(resource: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags") or []}


def _rules(permissions: list[dict]) -> list[str]:
    return sorted(json.dumps(p, sort_keys=True) for p in permissions or [])


def _iam(iam: Any) -> dict:
    out: dict[str, Any] = {"users": {}, "roles": {}, "profiles": {}}
    for page in iam.get_paginator("list_users").paginate():
        for user in page["Users"]:
            n = user["UserName"]
            out["users"][n] = {
                "attached": sorted(p["PolicyArn"] for p in iam.list_attached_user_policies(UserName=n)["AttachedPolicies"]),
                "inline": {p: iam.get_user_policy(UserName=n, PolicyName=p)["PolicyDocument"]
                           for p in iam.list_user_policies(UserName=n)["PolicyNames"]},
                "keys": {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName=n)["AccessKeyMetadata"]},
            }
    for page in iam.get_paginator("list_roles").paginate():
        for role in page["Roles"]:
            n = role["RoleName"]
            out["roles"][n] = {
                "attached": sorted(p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=n)["AttachedPolicies"]),
                "inline": {p: iam.get_role_policy(RoleName=n, PolicyName=p)["PolicyDocument"]
                           for p in iam.list_role_policies(RoleName=n)["PolicyNames"]},
            }
    for page in iam.get_paginator("list_instance_profiles").paginate():
        for profile in page["InstanceProfiles"]:
            out["profiles"][profile["InstanceProfileName"]] = sorted(r["RoleName"] for r in profile["Roles"])
    return out


def _snapshots(ec2: Any, filters: list[dict] | None = None) -> dict:
    out = {}
    for page in ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"], Filters=filters or []):
        for s in page["Snapshots"]:
            shared = ec2.describe_snapshot_attribute(SnapshotId=s["SnapshotId"], Attribute="createVolumePermission")
            out[s["SnapshotId"]] = {"state": s["State"], "description": s.get("Description"),
                                    "volume": s.get("VolumeId"), "encrypted": s.get("Encrypted"),
                                    "kmsKeyId": s.get("KmsKeyId"), "tags": _tags(s),
                                    "sharedWith": sorted(json.dumps(p, sort_keys=True)
                                                         for p in shared["CreateVolumePermissions"])}
    return out


def _ec2(ec2: Any) -> dict:
    out: dict[str, Any] = {"groups": {}, "instances": {}, "volumes": {}, "associations": {}}
    for page in ec2.get_paginator("describe_security_groups").paginate():
        for g in page["SecurityGroups"]:
            out["groups"][g["GroupId"]] = {"name": g["GroupName"], "vpc": g.get("VpcId"), "tags": _tags(g),
                                           "ingress": _rules(g["IpPermissions"]),
                                           "egress": _rules(g["IpPermissionsEgress"])}
    for page in ec2.get_paginator("describe_instances").paginate():
        for r in page["Reservations"]:
            for i in r["Instances"]:
                iid = i["InstanceId"]
                state = i["State"]["Name"]
                item = {"state": state, "tags": _tags(i),
                        "profile": (i.get("IamInstanceProfile") or {}).get("Arn"),
                        "interfaces": {n["NetworkInterfaceId"]: sorted(g["GroupId"] for g in n["Groups"])
                                       for n in i.get("NetworkInterfaces", [])},
                        "deleteOnTermination": {b["DeviceName"]: b["Ebs"]["DeleteOnTermination"]
                                                for b in i.get("BlockDeviceMappings", [])}}
                if state != "terminated":
                    for attribute, key in (("disableApiTermination", "DisableApiTermination"),
                                           ("instanceInitiatedShutdownBehavior", "InstanceInitiatedShutdownBehavior")):
                        item[attribute] = ec2.describe_instance_attribute(InstanceId=iid, Attribute=attribute)[key]["Value"]
                out["instances"][iid] = item
    for page in ec2.get_paginator("describe_volumes").paginate():
        for v in page["Volumes"]:
            out["volumes"][v["VolumeId"]] = {"state": v["State"], "tags": _tags(v), "attachments": sorted(
                (a["InstanceId"], a["Device"], a.get("DeleteOnTermination")) for a in v.get("Attachments", []))}
    for a in ec2.describe_iam_instance_profile_associations()["IamInstanceProfileAssociations"]:
        out["associations"][a["AssociationId"]] = (a["InstanceId"], a["IamInstanceProfile"]["Arn"], a["State"])
    out["snapshots"] = _snapshots(ec2)
    return out


def _load_balancing(dep: Any) -> dict:
    asg, elb, elbv2 = dep.client("autoscaling"), dep.client("elb"), dep.client("elbv2")
    groups = {g["AutoScalingGroupName"]: {"desired": g["DesiredCapacity"], "min": g["MinSize"], "max": g["MaxSize"],
                                          "instances": sorted((i["InstanceId"], i["LifecycleState"])
                                                              for i in g["Instances"])}
              for g in asg.describe_auto_scaling_groups()["AutoScalingGroups"]}
    classic = {lb["LoadBalancerName"]: sorted(i["InstanceId"] for i in lb["Instances"])
               for lb in elb.describe_load_balancers()["LoadBalancerDescriptions"]}
    targets = {tg["TargetGroupArn"]: sorted((t["Target"]["Id"], t["Target"].get("Port")) for t in
                                            elbv2.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])
                                            ["TargetHealthDescriptions"])
               for tg in elbv2.describe_target_groups()["TargetGroups"]}
    return {"autoScalingGroups": groups, "classicLoadBalancers": classic, "targetGroups": targets}


def _evidence_bucket(dep: Any) -> dict:
    """Object versions in the evidence bucket: write-once evidence by key and version; the documents every acting
    attempt writes anew (manifest, CloudTrail capture, report) by key only."""
    s3 = dep.client("s3", dep.forensics_account)
    once: dict[str, list[str]] = {}
    per_attempt: set[str] = set()
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=dep.bucket):
        for v in page.get("Versions", []):
            if any(marker in v["Key"] for marker in PER_ATTEMPT):
                key = re.sub(r"/manifest-\d+(-\d+)?", "/manifest-<attempt>", v["Key"])
                per_attempt.add(re.sub(r"/report-\d+", "/report-<attempt>", key))
            else:
                once.setdefault(v["Key"], []).append(v["VersionId"])
    return {"writeOnce": {k: sorted(v) for k, v in once.items()}, "perAttempt": sorted(per_attempt)}


def aws_state(dep: Any) -> dict:
    """Everything the responder could change: the member account's IAM (users, keys, policies, roles, profiles),
    EC2 (security groups and rules, instances with their attributes, groups, profile and tags, volumes, profile
    associations, snapshots with tags and shares), Auto Scaling and load-balancer registrations, and the forensics
    account's snapshots and evidence bucket."""
    return {
        "iam": _iam(dep.client("iam")),
        "ec2": _ec2(dep.client("ec2")),
        "loadBalancing": _load_balancing(dep),
        "forensics": {"snapshots": _snapshots(dep.client("ec2", dep.forensics_account)),
                      "bucket": _evidence_bucket(dep)},
    }


def evidence_view(dep: Any, account: str, instance_id: str) -> dict:
    """The evidence snapshots of one instance in `account` (by their description), as `aws_state` reads them."""
    return _snapshots(dep.client("ec2", account),
                      [{"Name": "description", "Values": [f"* instance {instance_id} evidence *"]}])


def instance_view(dep: Any, world: dict) -> dict:
    """What isolation changes about the world's instance, read back directly (a few calls, whatever the size of
    the account): its interfaces' groups, profile, tags, attributes, the responder groups of its VPC, its Auto
    Scaling, load-balancer and target-group registrations, its role's inline policies, the metadata objects."""
    ec2, iam = dep.client("ec2"), dep.client("iam")
    iid = world["instanceId"]
    i = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [world["vpcId"]]}])["SecurityGroups"]
    s3 = dep.client("s3", dep.forensics_account)
    metadata = [o["Key"] for o in s3.list_objects_v2(Bucket=dep.bucket, Prefix="incidents/").get("Contents", [])
                if o["Key"].endswith(f"/instances/{iid}/metadata.json")]
    return {
        "interfaces": {n["NetworkInterfaceId"]: sorted(g["GroupId"] for g in n["Groups"])
                       for n in i.get("NetworkInterfaces", [])},
        "profile": (i.get("IamInstanceProfile") or {}).get("Arn"),
        "tags": _tags(i),
        "deleteOnTermination": {b["DeviceName"]: b["Ebs"]["DeleteOnTermination"] for b in i["BlockDeviceMappings"]},
        "disableApiTermination": ec2.describe_instance_attribute(
            InstanceId=iid, Attribute="disableApiTermination")["DisableApiTermination"]["Value"],
        "responderGroups": {_tags(g)["ir:purpose"]: g["GroupId"] for g in groups if "ir:purpose" in _tags(g)},
        "vpcGroups": len(groups),
        "autoScaling": [a["AutoScalingGroupName"] for a in dep.client("autoscaling").describe_auto_scaling_instances(
            InstanceIds=[iid])["AutoScalingInstances"]],
        "classic": iid in [x["InstanceId"] for x in dep.client("elb").describe_load_balancers(
            LoadBalancerNames=[world["classicLoadBalancer"]])["LoadBalancerDescriptions"][0]["Instances"]],
        "targetGroup": iid in [t["Target"]["Id"] for t in dep.client("elbv2").describe_target_health(
            TargetGroupArn=world["targetGroupArn"])["TargetHealthDescriptions"]],
        "roleInline": sorted(iam.list_role_policies(RoleName=world["roleName"])["PolicyNames"]),
        "metadata": metadata,
    }


def flatten(value: Any, path: tuple = ()) -> dict[tuple, Any]:
    if isinstance(value, dict) and value:
        out: dict[tuple, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, path + (k,)))
        return out
    return {path: value}


def changes(before: dict, after: dict) -> dict[tuple, tuple[Any, Any]]:
    """{path: (before, after)} of every leaf that differs (added and removed leaves included)."""
    a, b = flatten(before), flatten(after)
    return {p: (a.get(p), b.get(p)) for p in set(a) | set(b) if a.get(p) != b.get(p)}


# --------------------------------------------------------------------------------------------------------
# Reading a run
# --------------------------------------------------------------------------------------------------------
def summary(run: local.Execution) -> dict:
    """The incident summary (Finalize's output): the execution output, or for a failed run read from its history."""
    return run.output if run.output and "outcome" in run.output else finalize_output(run)


def instance_item(run: local.Execution, instance_id: str) -> dict:
    return instance_detail(run, instance_id)


def task_failures(run: local.Execution) -> list[tuple[str, str]]:
    """(error, cause) of every failed Lambda task attempt in the history (the attempts Step Functions retried)."""
    found = []
    for event in run.events:
        details = event.get("lambdaFunctionFailedEventDetails") or event.get("taskFailedEventDetails")
        if details and event["type"] in ("LambdaFunctionFailed", "TaskFailed"):
            found.append((details.get("error", ""), details.get("cause", "")))
    return found


# --------------------------------------------------------------------------------------------------------
# Interceptors of the handlers' calls (test-only)
# --------------------------------------------------------------------------------------------------------
@contextmanager
def intercept(api: str, *, skip: int = 0, times: int = 1, code: str | None = None,
              before: Callable[[], None] | None = None, lose_response: bool = False,
              message: str = "injected fault") -> Iterator[dict]:
    """Act on the handlers' calls to `api` (e.g. "ec2:CopySnapshot"), leaving the first `skip` calls alone and
    then acting on `times` calls:

    * `before()`: run just before the call (the world changes under the responder: an instance terminated, a
      snapshot deleted), then the call goes to the in-memory AWS, which answers with its real error;
    * `code`: fail the call with that AWS error code instead of making it (like `tests.worlds.faults.inject`);
    * `lose_response`: make the call, then raise `code` (default InternalError) as if the response had been
      lost on the way back: the change is made, the caller does not know.

    Yields a dict counting the calls seen and acted on. Only calls made inside a Lambda handler are touched."""
    seen = {"calls": 0, "acted": 0}
    original = BaseClient._make_api_call
    failure = code or ("InternalError" if lose_response else None)

    def error(operation_name: str) -> ClientError:
        return ClientError({"Error": {"Code": failure, "Message": message},
                            "ResponseMetadata": {"RequestId": "intercepted", "HTTPStatusCode": 400}}, operation_name)

    def make_api_call(self, operation_name, api_params):
        name = f"{self.meta.service_model.signing_name}:{operation_name}"
        if not local._running_function() or name != api:
            return original(self, operation_name, api_params)
        seen["calls"] += 1
        if not skip < seen["calls"] <= skip + times:
            return original(self, operation_name, api_params)
        seen["acted"] += 1
        if before is not None:  # the world's change is not a call of the handler
            outer, local._handler.function = local._handler.function, None
            try:
                before()
            finally:
                local._handler.function = outer
        if lose_response:
            original(self, operation_name, api_params)
            raise error(operation_name)
        if failure:
            raise error(operation_name)
        return original(self, operation_name, api_params)

    with mock.patch.object(BaseClient, "_make_api_call", make_api_call):
        yield seen
