"""How many AWS calls one isolation makes, call by call (the benchmark quotes these figures).

Web tier instance (one interface, profile, Auto Scaling group, Classic load balancer, one target group, three
volumes, two subnets under the VPC's default network ACL): 33 calls when it is the first isolation in its VPC (the
two responder groups are created and set up), 27 when the VPC's groups exist (25 for an instance in no group and no
load balancer), 11 reads for a second run that changes nothing. The network ACL isolation (`networkAclIsolation`)
adds 5 of those: DescribeNetworkAcls, DescribeSubnets, the connection-tracking timeouts, and one deny entry per
address and direction (one IPv4 address: 2) - 2 reads on a second run. Plus sts:AssumeRole into the member
and the forensics account once per Lambda container (cached credentials), not counted here.

    .venv/bin/python -m pytest -q -s tests/integration/test_isolation_calls.py
"""
from __future__ import annotations

from collections import Counter

from demo.world_instance import build
from responder.isolation import isolate
from tests.worlds import isolation as w
from tests.worlds.deployment import deployment

MEMBER, FORENSICS, REGION = "444455556666", "999988887777", "eu-west-1"

READS = Counter({
    "ec2:DescribeInstances": 1,  # interfaces, groups, profile, volumes, tags, state: one call
    "ec2:DescribeInstanceAttribute": 2,  # disableApiTermination, instanceInitiatedShutdownBehavior
    "autoscaling:DescribeAutoScalingInstances": 1,
    "ec2:DescribeSecurityGroups": 1,  # the responder's groups of every VPC of the instance, with their rules
    "elb:DescribeLoadBalancers": 1,  # Classic load balancers list their instances
    "elbv2:DescribeTargetGroups": 1,
    "elbv2:DescribeTargetHealth": 1,  # instance-type groups of the instance's VPCs, ip-type groups anywhere
    "ec2:DescribeNetworkAcls": 1, "ec2:DescribeSubnets": 1,  # the VPC's ACLs with entries; subnets' CIDRs
})
ISOLATION = READS + Counter({
    "s3:PutObject": 1,  # metadata.json, write-once
    "ec2:ModifyInstanceAttribute": 2,  # termination protection; DeleteOnTermination of the three volumes at once
    "autoscaling:DetachInstances": 1,
    "ec2:ModifyNetworkInterfaceAttribute": 3,  # untrack group, then quarantine group; tracking timeouts
    "ec2:CreateNetworkAclEntry": 2,  # deny the instance's address, inbound and outbound
    "iam:GetInstanceProfile": 1, "iam:GetRole": 1, "iam:GetRolePolicy": 1, "iam:PutRolePolicy": 1,
    "ec2:DescribeIamInstanceProfileAssociations": 1, "ec2:ReplaceIamInstanceProfileAssociation": 1,
    "elbv2:DeregisterTargets": 1,
    "ec2:CreateTags": 1,
})
FIRST_IN_VPC = Counter({
    "ec2:CreateSecurityGroup": 2,  # quarantine + untrack, tagged at creation
    "ec2:DescribeSecurityGroups": 1,  # their rules as EC2 made them (IPv6 VPCs get a ::/0 egress rule too)
    "ec2:RevokeSecurityGroupEgress": 1,  # quarantine: the default allow-all egress
    "ec2:AuthorizeSecurityGroupIngress": 1, "ec2:AuthorizeSecurityGroupEgress": 1,  # untrack: all, v4 + v6
})
SECOND_RUN = READS + Counter({"s3:PutObject": 1})  # answered PreconditionFailed: recorded unchanged


dep = deployment(member_account=MEMBER, forensics_account=FORENSICS, region=REGION)


def measure(dep, instance_id: str, incident: dict) -> tuple[dict, Counter]:
    calls = w.Calls()
    result = isolate(instance_id, incident, adapters_for=w.adapters_for(dep, calls), settings=w.settings_of(dep))
    print(f"\n{instance_id}: {result['status']}, {calls.count} AWS calls")
    for api, n in sorted(calls.by_api().items()):
        print(f"  {n} x {api}")
    return result, calls.by_api()


def test_calls_of_the_first_isolation_in_a_vpc_then_with_the_groups_in_place_then_again(dep):
    first = build(dep)
    result, calls = measure(dep, first["instanceId"], w.incident(dep))
    assert result["status"] == "isolated"
    assert calls == ISOLATION + FIRST_IN_VPC and sum(calls.values()) == 33

    incident = w.incident(dep)
    build(dep, name="elsewhere")  # another VPC's target group: never described for this instance
    # an instance in the first world's VPC: its groups exist; in no Auto Scaling group or load balancer
    neighbour = w.instance(dep, {"subnetId": first["subnetIds"][1], "groupId": first["securityGroupId"]},
                           profile_name=w.profile(dep)["name"], volumes=3)
    result, calls = measure(dep, neighbour, incident)
    assert result["status"] == "isolated"
    expected = ISOLATION - Counter({"autoscaling:DetachInstances": 1, "elbv2:DeregisterTargets": 1})
    assert calls == expected and sum(calls.values()) == 25

    result, calls = measure(dep, neighbour, incident)
    assert result["status"] == "already_isolated"
    assert calls == SECOND_RUN and sum(calls.values()) == 11


def test_gone_and_protected_instances_cost_one_call(dep):
    net = w.vpc(dep, 70)
    protected = w.instance(dep, net, tags={"ir:protected": "true"})
    for instance_id in (protected, "i-0123456789abcdef0"):
        result, calls = measure(dep, instance_id, w.incident(dep))
        assert result["status"] in ("protected", "not_found")
        assert calls == Counter({"ec2:DescribeInstances": 1})
