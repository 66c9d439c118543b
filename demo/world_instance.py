"""A web tier to isolate: one instance behind a Classic load balancer and an ALB target group, in an Auto Scaling
group, with an instance profile whose role has a live session, and three EBS volumes (root unencrypted, one under the
AWS managed ``aws/ebs`` key, one under a customer managed KMS key).

    from demo.world_instance import build
    world = build(dep)            # dep = state_machines.local.deploy(...), inside local.aws()
    world["instanceId"], world["volumes"]["customerManaged"], ...

Everything is created in the deployment's (first) member account with administrator clients (`dep.client`).
`name` prefixes every resource, so several worlds fit in one deployment (the default picks a free one).
"""
from __future__ import annotations

import json
from typing import Any

EC2_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
APP_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"}]}


def _free_name(dep: Any, base: str) -> str:
    taken = {g["AutoScalingGroupName"] for g in dep.client("autoscaling").describe_auto_scaling_groups()
             ["AutoScalingGroups"]}
    n = 1
    while (f"{base}-asg" if n == 1 else f"{base}{n}-asg") in taken:
        n += 1
    return base if n == 1 else f"{base}{n}"


def _image(ec2: Any) -> str:
    images = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "architecture", "Values": ["x86_64"]}])["Images"]
    if images:
        return sorted(images, key=lambda i: i["ImageId"])[0]["ImageId"]
    # moto without its default AMIs (MOTO_EC2_LOAD_DEFAULT_AMIS=false): register one of our own
    return ec2.register_image(Name="web-base", RootDeviceName="/dev/xvda", Architecture="x86_64",
                              VirtualizationType="hvm")["ImageId"]


def build(dep: Any, *, name: str | None = None, cidr_octet: int | None = None) -> dict[str, Any]:
    """Create the web tier in `dep`'s member account; return the ids (see the keys below)."""
    name = name or _free_name(dep, "web")
    region = dep.region
    ec2, iam, kms, sts = dep.client("ec2"), dep.client("iam"), dep.client("kms"), dep.client("sts")
    elb, elbv2, asg = dep.client("elb"), dep.client("elbv2"), dep.client("autoscaling")
    account = sts.get_caller_identity()["Account"]
    octet = cidr_octet if cidr_octet is not None else 10 + len(ec2.describe_vpcs()["Vpcs"])

    vpc = ec2.create_vpc(CidrBlock=f"10.{octet}.0.0/16",
                         TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": name}]}])["Vpc"]
    vpc_id = vpc["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.{octet}.{i}.0/24",
                                 AvailabilityZone=f"{region}{az}")["Subnet"]["SubnetId"]
               for i, az in ((1, "a"), (2, "b"))]
    lb_sg = ec2.create_security_group(GroupName=f"{name}-lb", Description="load balancer", VpcId=vpc_id)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=lb_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    app_sg = ec2.create_security_group(GroupName=f"{name}-app", Description="app servers", VpcId=vpc_id)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=app_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": lb_sg}]},
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": f"10.{octet}.0.0/16"}]}])

    role_name, profile = f"{name}-api-server-role", f"{name}-api-server"
    role_arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(EC2_TRUST))["Role"]["Arn"]
    iam.put_role_policy(RoleName=role_name, PolicyName="app", PolicyDocument=json.dumps(APP_POLICY))
    profile_arn = iam.create_instance_profile(InstanceProfileName=profile)["InstanceProfile"]["Arn"]
    iam.add_role_to_instance_profile(InstanceProfileName=profile, RoleName=role_name)

    cmk = kms.create_key(Description=f"{name} application data key")["KeyMetadata"]["Arn"]
    kms.create_alias(AliasName=f"alias/{name}-data", TargetKeyId=cmk)
    image = _image(ec2)
    instance = ec2.run_instances(
        ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro", SubnetId=subnets[0],
        SecurityGroupIds=[app_sg], IamInstanceProfile={"Name": profile},
        BlockDeviceMappings=[
            {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8, "DeleteOnTermination": True}},
            {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 4, "DeleteOnTermination": True, "Encrypted": True}},
            {"DeviceName": "/dev/sdg", "Ebs": {"VolumeSize": 4, "DeleteOnTermination": True, "Encrypted": True,
                                               "KmsKeyId": cmk}},
        ],
        TagSpecifications=[{"ResourceType": "instance", "Tags": [
            {"Key": "Name", "Value": f"{name}-api-1"}, {"Key": "Environment", "Value": "production"}]}],
    )["Instances"][0]
    instance_id = instance["InstanceId"]
    volumes = {b["DeviceName"]: b["Ebs"]["VolumeId"] for b in ec2.describe_instances(
        InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["BlockDeviceMappings"]}
    aws_ebs_key = kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]["Arn"]

    # the role's live session: what the instance (and an attacker on it) holds right now
    session = sts.assume_role(RoleArn=role_arn, RoleSessionName=instance_id)["Credentials"]

    clb = f"{name}-clb"
    elb.create_load_balancer(LoadBalancerName=clb, Subnets=subnets, SecurityGroups=[lb_sg],
                             Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 80}])
    alb = elbv2.create_load_balancer(Name=f"{name}-alb", Subnets=subnets, SecurityGroups=[lb_sg],
                                     Type="application", Scheme="internet-facing")["LoadBalancers"][0]
    tg = elbv2.create_target_group(Name=f"{name}-tg", Protocol="HTTP", Port=80, VpcId=vpc_id,
                                   TargetType="instance", HealthCheckPath="/health")["TargetGroups"][0]
    elbv2.create_listener(LoadBalancerArn=alb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                          DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])

    template = f"{name}-lt"
    ec2.create_launch_template(LaunchTemplateName=template, LaunchTemplateData={
        "ImageId": image, "InstanceType": "t3.micro", "SecurityGroupIds": [app_sg],
        "IamInstanceProfile": {"Name": profile}})
    group = f"{name}-asg"
    asg.create_auto_scaling_group(
        AutoScalingGroupName=group, LaunchTemplate={"LaunchTemplateName": template, "Version": "$Latest"},
        MinSize=1, MaxSize=4, DesiredCapacity=1, VPCZoneIdentifier=",".join(subnets), HealthCheckType="ELB",
        HealthCheckGracePeriod=60, LoadBalancerNames=[clb], TargetGroupARNs=[tg["TargetGroupArn"]])
    # the compromised instance joins the group (desired 1 -> 2) and so both load balancers
    asg.attach_instances(InstanceIds=[instance_id], AutoScalingGroupName=group)
    if instance_id not in [i["InstanceId"] for i in elb.describe_load_balancers(
            LoadBalancerNames=[clb])["LoadBalancerDescriptions"][0]["Instances"]]:
        elb.register_instances_with_load_balancer(LoadBalancerName=clb, Instances=[{"InstanceId": instance_id}])
    registered = [d["Target"]["Id"] for d in elbv2.describe_target_health(
        TargetGroupArn=tg["TargetGroupArn"])["TargetHealthDescriptions"]]
    if instance_id not in registered:
        elbv2.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": instance_id, "Port": 80}])

    return {
        "name": name,
        "accountId": account,
        "region": region,
        "vpcId": vpc_id,
        "subnetIds": subnets,
        "securityGroupId": app_sg,
        "loadBalancerSecurityGroupId": lb_sg,
        "instanceId": instance_id,
        "imageId": image,
        "autoScalingGroup": group,
        "launchTemplate": template,
        "classicLoadBalancer": clb,
        "loadBalancerArn": alb["LoadBalancerArn"],
        "targetGroupArn": tg["TargetGroupArn"],
        "instanceProfile": profile,
        "instanceProfileArn": profile_arn,
        "roleName": role_name,
        "roleArn": role_arn,
        "session": {"accessKeyId": session["AccessKeyId"], "secretAccessKey": session["SecretAccessKey"],
                    "sessionToken": session["SessionToken"]},
        "volumes": {"root": volumes["/dev/xvda"], "awsManaged": volumes["/dev/sdf"],
                    "customerManaged": volumes["/dev/sdg"]},
        "kmsKeys": {"awsManaged": aws_ebs_key, "customerManaged": cmk},
    }


def state(dep: Any, world: dict[str, Any]) -> dict[str, Any]:
    """What the world's instance looks like now: for the demo to show before and after an isolation."""
    ec2, asg, elb, elbv2 = dep.client("ec2"), dep.client("autoscaling"), dep.client("elb"), dep.client("elbv2")
    instance_id = world["instanceId"]
    instance = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    names = {g["GroupId"]: g["GroupName"] for g in ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [world["vpcId"]]}])["SecurityGroups"]}
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[world["autoScalingGroup"]])["AutoScalingGroups"][0]
    clb = elb.describe_load_balancers(LoadBalancerNames=[world["classicLoadBalancer"]])["LoadBalancerDescriptions"][0]
    targets = elbv2.describe_target_health(TargetGroupArn=world["targetGroupArn"])["TargetHealthDescriptions"]
    return {
        "interfaces": {n["NetworkInterfaceId"]: [names.get(g["GroupId"], g["GroupId"]) for g in n["Groups"]]
                       for n in instance["NetworkInterfaces"]},
        "instanceProfile": (instance.get("IamInstanceProfile") or {}).get("Arn", "").rsplit("/", 1)[-1] or None,
        "inAutoScalingGroup": instance_id in [i["InstanceId"] for i in group["Instances"]],
        "groupDesiredCapacity": group["DesiredCapacity"],
        "inClassicLoadBalancer": instance_id in [i["InstanceId"] for i in clb["Instances"]],
        "inTargetGroup": instance_id in [t["Target"]["Id"] for t in targets],
        "terminationProtection": ec2.describe_instance_attribute(
            InstanceId=instance_id, Attribute="disableApiTermination")["DisableApiTermination"]["Value"],
        "deleteOnTermination": {b["DeviceName"]: b["Ebs"]["DeleteOnTermination"]
                                for b in instance["BlockDeviceMappings"]},
        "tags": {t["Key"]: t["Value"] for t in instance.get("Tags", [])},
    }
