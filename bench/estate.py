"""An estate-wide burst: findings spread over many accounts and regions through the local runtime (the shipped ASL
and handlers, one responder, the forensics account in its own region; README "Every region").

Most findings are IAM (access keys used from a known-bad address), one in `--instance-every` is an EC2 instance
finding (isolation, snapshots, cross-region copy into the forensics region, digests, retention). Executions run one
at a time, so the AWS call counts are exact. Prints the contained count, state transitions, Lambda invocations, AWS
calls, the bytes copied across regions and an estimated AWS bill for the burst:

- Step Functions Standard: $0.025 per 1,000 state transitions;
- Lambda: $0.20 per million requests plus $0.0000133334 per GB-second (arm64), at an assumed 1 s per invocation
  at the function's memory (an estimate: the local runtime's durations are not Lambda's);
- cross-region data transfer: $0.02 per GB copied from another region into the forensics region;
- snapshot storage: $0.05 per GB-month for the forensics copies (a first copy is a full copy).

    .venv/bin/python -m bench.estate [--findings 200] [--accounts 15] [--regions 4] [--instance-every 10]
"""
from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "lambdas")]

REGIONS = ("eu-west-1", "us-east-1", "ap-southeast-2", "sa-east-1", "us-west-2", "ca-central-1")
FORENSICS, FORENSICS_REGION = "999988887777", "eu-central-1"
PRICE = {"transition": 0.025 / 1000, "request": 0.20 / 1e6, "gb_second": 0.0000133334, "transfer_gb": 0.02,
         "storage_gb_month": 0.05}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--findings", type=int, default=200)
    parser.add_argument("--accounts", type=int, default=15)
    parser.add_argument("--regions", type=int, default=4)
    parser.add_argument("--instance-every", type=int, default=10, help="one finding in N is an instance finding")
    args = parser.parse_args(argv)

    from state_machines import local
    from stacks.catalog import FUNCTIONS
    from tests.worlds.workflow import access_key_event, event

    memory = {spec.function_name: spec.memory_mb for spec in FUNCTIONS}
    accounts = [f"{100000000000 + 1111 * (i + 1):012d}" for i in range(args.accounts)]
    regions = REGIONS[:args.regions]
    home = regions[0]
    outcomes: collections.Counter = collections.Counter()
    calls: collections.Counter = collections.Counter()
    transitions = invocations = 0
    gb_seconds = 0.0
    with local.aws(region=home):
        started = time.perf_counter()
        dep = local.deploy(member_account=accounts, forensics_account=FORENSICS, region=home, regions=regions,
                           forensics_region=FORENSICS_REGION)
        deployed = time.perf_counter() - started
        plan = []
        for n in range(args.findings):
            account, region = accounts[n % len(accounts)], regions[(n // len(accounts)) % len(regions)]
            if n % args.instance_every == 0:
                ec2 = dep.client("ec2", account, region)
                vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:bench", "Values": ["estate"]}])["Vpcs"]
                if vpcs:
                    subnet = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpcs[0]["VpcId"]]}])[
                        "Subnets"][0]["SubnetId"]
                else:
                    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16", TagSpecifications=[
                        {"ResourceType": "vpc", "Tags": [{"Key": "bench", "Value": "estate"}]}])["Vpc"]["VpcId"]
                    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
                instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, InstanceType="t3.micro",
                                             SubnetId=subnet)["Instances"][0]["InstanceId"]
                ev = event("guardduty-instance.json", account=account, region=region)
                ev["detail"]["resource"]["instanceDetails"]["instanceId"] = instance
                plan.append(("instance", account, region, ev))
            else:
                iam = dep.client("iam", account)
                user = f"estate-user-{n}"
                iam.create_user(UserName=user)
                key = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
                plan.append(("iam", account, region,
                             access_key_event(account=account, region=region, user_type="IAMUser", name=user,
                                              key=key)))
        started, cpu = time.perf_counter(), time.process_time()
        for n, (_kind, _account, _region, ev) in enumerate(plan):
            run = local.deliver(ev, dep, name=f"estate-{n}")
            outcomes[(run.output or {}).get("outcome") or f"{run.status}:{run.error}"] += 1
            transitions += run.transitions
            calls.update(run.api_calls)
            for e in run.events:
                if e.get("type") == "LambdaFunctionScheduled":
                    invocations += 1
                    fn = (e.get("lambdaFunctionScheduledEventDetails") or {}).get("resource", "").rsplit(":", 1)[-1]
                    gb_seconds += memory.get(fn, 256) / 1024
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        copies = [s for s in dep.client("ec2", FORENSICS, FORENSICS_REGION).describe_snapshots(
            OwnerIds=["self"])["Snapshots"]]
        copied_gb = sum(s["VolumeSize"] for s in copies)  # GiB as EC2 reports them; every source is another region
    by_service = collections.Counter()
    for api, count in calls.items():
        by_service[api.split(":", 1)[0]] += count
    instances = sum(1 for p in plan if p[0] == "instance")
    cost = {"Step Functions": transitions * PRICE["transition"],
            "Lambda": invocations * PRICE["request"] + gb_seconds * PRICE["gb_second"],
            "cross-region transfer": copied_gb * PRICE["transfer_gb"],
            "snapshot storage (per month)": copied_gb * PRICE["storage_gb_month"]}
    print(f"{args.findings} findings ({instances} instance, {args.findings - instances} IAM) over "
          f"{len(accounts)} accounts and {len(regions)} regions ({', '.join(regions)}), forensics in "
          f"{FORENSICS_REGION}; deploy {deployed:.1f} s")
    print(f"outcomes: {dict(outcomes)}   contained: {outcomes.get('contained', 0)}/{args.findings}")
    print(f"state transitions: {transitions} ({transitions / args.findings:.1f} per finding)   Lambda invocations: "
          f"{invocations}   AWS calls: {sum(calls.values())} {dict(by_service.most_common())}")
    print(f"forensics copies in {FORENSICS_REGION}: {len(copies)}, {copied_gb} GiB copied across regions")
    print("estimated cost: " + ", ".join(f"{k} ${v:.4f}" for k, v in cost.items())
          + f"; total ${sum(cost.values()):.4f} (+ storage per month thereafter)")
    print(f"wall {elapsed:.1f} s, CPU {cpu:.1f} s for the local runtime")
    return 0 if outcomes.get("contained", 0) == args.findings else 1


if __name__ == "__main__":
    raise SystemExit(main())
