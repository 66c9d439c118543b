"""Helpers for the instance-isolation tests: small instances in a deployment's member account, adapters with a
call counter, and a read-back of everything isolation could change."""
from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

from responder.isolation import Adapters
from responder.settings import Settings

EC2_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def incident(dep, *, incident_id: str | None = None, dry_run: bool = False) -> dict:
    return {"incidentId": incident_id or f"gd-{uuid.uuid4().hex[:12]}", "accountId": dep.member_account,
            "region": dep.region, "partition": "aws", "cutoff": "2026-01-01T00:00:10Z", "dryRun": dry_run,
            "identities": [], "instances": []}


def settings_of(dep, **changes) -> Settings:
    base = Settings.from_env(dep.environment)
    return Settings(**{**base.__dict__, **changes})


class Calls:
    """Counts the AWS API calls made through the clients it hands out (botocore before-call events)."""

    def __init__(self):
        self.made: list[str] = []

    def watch(self, client: Any, label: str) -> Any:
        client.meta.events.register("before-call", lambda model, **_: self.made.append(f"{label}:{model.name}"))
        return client

    @property
    def count(self) -> int:
        return len(self.made)

    def by_api(self) -> Counter:
        return Counter(self.made)

    def clear(self) -> None:
        self.made.clear()


def adapters_for(dep, calls: Calls | None = None, *, evidence: bool = True, ec2_client: Any = None):
    """`adapters_for(journal)` with administrator clients in the member account (and the forensics account)."""
    calls = calls or Calls()

    def member(service: str):
        if service == "ec2" and ec2_client is not None:
            return ec2_client
        return calls.watch(dep.client(service), service)

    def forensics(service: str):
        return calls.watch(dep.client(service, account=dep.forensics_account), service)

    def build(journal):
        return Adapters(journal, member, settings_of(dep), forensics=forensics if evidence else None)

    return build


_IMAGES: dict[tuple, str] = {}


def image(dep) -> str:
    """One image id per deployment (listing moto's ~1,300 default AMIs costs a second each time)."""
    key = (dep.state_machine_arn, dep.member_account)
    if key not in _IMAGES:
        ec2 = dep.client("ec2")
        images = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["amzn2-ami-*"]}])["Images"]
        _IMAGES[key] = (sorted(images, key=lambda i: i["ImageId"])[0]["ImageId"] if images
                        else ec2.register_image(Name="test-base")["ImageId"])
    return _IMAGES[key]


def vpc(dep, octet: int, *, ipv6: bool = False) -> dict:
    """A VPC 10.<octet>.0.0/16 with a subnet in zone a and an application group allowing SSH from anywhere."""
    ec2 = dep.client("ec2")
    vpc_id = ec2.create_vpc(CidrBlock=f"10.{octet}.0.0/16", AmazonProvidedIpv6CidrBlock=ipv6)["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.{octet}.1.0/24",
                               AvailabilityZone=f"{dep.region}a")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName=f"app-{octet}", Description="app", VpcId=vpc_id)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    return {"vpcId": vpc_id, "subnetId": subnet, "groupId": group}


def profile(dep, name: str | None = None) -> dict:
    iam = dep.client("iam")
    name = name or f"app-{uuid.uuid4().hex[:8]}"
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=json.dumps(EC2_TRUST))["Role"]
    arn = iam.create_instance_profile(InstanceProfileName=name)["InstanceProfile"]["Arn"]
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=role["RoleName"])
    return {"name": name, "arn": arn, "roleName": role["RoleName"], "roleArn": role["Arn"]}


def instance(dep, net: dict, *, profile_name: str | None = None, tags: dict | None = None,
             volumes: int = 1) -> str:
    ec2 = dep.client("ec2")
    params: dict[str, Any] = dict(
        ImageId=image(dep), MinCount=1, MaxCount=1, InstanceType="t3.micro", SubnetId=net["subnetId"],
        SecurityGroupIds=[net["groupId"]],
        BlockDeviceMappings=[{"DeviceName": f"/dev/sd{chr(ord('f') + i)}" if i else "/dev/xvda",
                              "Ebs": {"VolumeSize": 2, "DeleteOnTermination": True}} for i in range(volumes)],
        TagSpecifications=[{"ResourceType": "instance", "Tags": [
            {"Key": k, "Value": v} for k, v in {"Environment": "production", **(tags or {})}.items()]}],
    )
    if profile_name:
        params["IamInstanceProfile"] = {"Name": profile_name}
    return ec2.run_instances(**params)["Instances"][0]["InstanceId"]


def second_interface(dep, instance_id: str, net: dict) -> str:
    ec2 = dep.client("ec2")
    eni = ec2.create_network_interface(SubnetId=net["subnetId"], Groups=[net["groupId"]])["NetworkInterface"]
    ec2.attach_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"], InstanceId=instance_id, DeviceIndex=1)
    return eni["NetworkInterfaceId"]


def describe(dep, instance_id: str) -> dict:
    return dep.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def interface_groups(dep, instance_id: str) -> dict[str, list[str]]:
    return {n["NetworkInterfaceId"]: sorted(g["GroupId"] for g in n["Groups"])
            for n in describe(dep, instance_id)["NetworkInterfaces"]}


def responder_groups(dep, vpc_id: str) -> dict[str, dict]:
    """{purpose: group} of the responder's groups in the VPC."""
    groups = dep.client("ec2").describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
    out = {}
    for g in groups["SecurityGroups"]:
        purpose = {t["Key"]: t["Value"] for t in g.get("Tags", [])}.get("ir:purpose")
        if purpose:
            out[purpose] = g
    return out


def instance_state(dep, instance_id: str) -> dict:
    """Everything isolation could change about one instance, for before/after comparisons."""
    ec2, asg, elb, elbv2, iam = (dep.client(s) for s in ("ec2", "autoscaling", "elb", "elbv2", "iam"))
    d = describe(dep, instance_id)
    vpcs = sorted({n["VpcId"] for n in d["NetworkInterfaces"]})
    profile_arn = (d.get("IamInstanceProfile") or {}).get("Arn")
    role_policies = {}
    if profile_arn:
        for role in iam.get_instance_profile(InstanceProfileName=profile_arn.rsplit("/", 1)[-1])["InstanceProfile"]["Roles"]:
            role_policies[role["RoleName"]] = sorted(iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"])
    registered = {}
    for tg in elbv2.describe_target_groups()["TargetGroups"]:
        registered[tg["TargetGroupName"]] = sorted(
            (t["Target"]["Id"], t["Target"].get("Port")) for t in
            elbv2.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])["TargetHealthDescriptions"])
    return {
        "interfaces": interface_groups(dep, instance_id),
        "groups": {vpc: {p: (g["GroupId"], g["IpPermissions"], g["IpPermissionsEgress"])
                         for p, g in responder_groups(dep, vpc).items()} for vpc in vpcs},
        "termination": ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="disableApiTermination")
        ["DisableApiTermination"]["Value"],
        "shutdown": ec2.describe_instance_attribute(InstanceId=instance_id,
                                                    Attribute="instanceInitiatedShutdownBehavior")
        ["InstanceInitiatedShutdownBehavior"]["Value"],
        "deleteOnTermination": {b["DeviceName"]: b["Ebs"]["DeleteOnTermination"] for b in d["BlockDeviceMappings"]},
        "profile": profile_arn,
        "rolePolicies": role_policies,
        "tags": {t["Key"]: t["Value"] for t in d.get("Tags", [])},
        "asg": asg.describe_auto_scaling_instances(InstanceIds=[instance_id])["AutoScalingInstances"],
        "classic": {lb["LoadBalancerName"]: sorted(i["InstanceId"] for i in lb["Instances"])
                    for lb in elb.describe_load_balancers()["LoadBalancerDescriptions"]},
        "targetGroups": registered,
    }


def in_auto_scaling_group(dep, net: dict, name: str) -> str:
    """An instance attached to a new Auto Scaling group `name` (desired 0 -> 1, InService)."""
    instance_id = instance(dep, net)
    asg = dep.client("autoscaling")
    asg.create_launch_configuration(LaunchConfigurationName=name, ImageId=image(dep), InstanceType="t3.micro")
    asg.create_auto_scaling_group(AutoScalingGroupName=name, LaunchConfigurationName=name, MinSize=0, MaxSize=3,
                                  DesiredCapacity=0, VPCZoneIdentifier=net["subnetId"])
    asg.attach_instances(InstanceIds=[instance_id], AutoScalingGroupName=name)
    return instance_id
