"""Load balancers at estate scale: how long finding an instance's registrations takes, and how many calls, among
500 target groups (250 of type instance in the instance's VPC, 250 of type ip spread over a peered VPC), with the
instance registered as an ip target (AvailabilityZone ``all``) in one target group of the peered VPC.

Runs the production isolation (`responder.isolation.isolate`) against the local runtime and prints the wall time
of the target-group look-up, the calls it made, and the registrations it found and removed. The local runtime
answers in well under a millisecond per call; on AWS each DescribeTargetHealth takes tens of milliseconds, so the
printed per-call figure times the call count is the estimate to compare with the task's budget.

    .venv/bin/python -m bench.lb_scale [target_groups]
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "lambdas")]

MEMBER, FORENSICS, REGION = "444455556666", "999988887777", "eu-west-1"


def main(args: list[str]) -> int:
    os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    from responder.isolation import isolate
    from state_machines import local
    from tests.worlds import isolation as w

    total = int(args[0]) if args else 500
    with local.aws(region=REGION):
        dep = local.deploy(member_account=MEMBER, forensics_account=FORENSICS, region=REGION)
        net, peer = w.vpc(dep, 20), w.vpc(dep, 21)
        instance_id = w.instance(dep, net)
        ip = w.describe(dep, instance_id)["PrivateIpAddress"]
        elbv2 = dep.client("elbv2")
        arns = []
        for n in range(total):
            own = n < total // 2
            arns.append(elbv2.create_target_group(
                Name=f"tg-{n}", Protocol="HTTP", Port=80, VpcId=net["vpcId"] if own else peer["vpcId"],
                TargetType="instance" if own else "ip")["TargetGroups"][0]["TargetGroupArn"])
        elbv2.register_targets(TargetGroupArn=arns[-1], Targets=[{"Id": ip, "Port": 80, "AvailabilityZone": "all"}])

        calls = w.Calls()
        started: dict[str, float] = {}
        finished: dict[str, float] = {}

        def stamp(model, **_):
            if model.name in ("DescribeTargetGroups", "DescribeTargetHealth", "DeregisterTargets"):
                started.setdefault("lb", time.perf_counter())
                finished["lb"] = time.perf_counter()

        build = w.adapters_for(dep, calls)

        def adapters_for(journal):
            a = build(journal)
            a.target_groups._c.meta.events.register("before-call", stamp)
            return a

        t0 = time.perf_counter()
        result = isolate(instance_id, w.incident(dep), adapters_for=adapters_for, settings=w.settings_of(dep))
        elapsed = time.perf_counter() - t0
        by_api = calls.by_api()
        lb_calls = {k: v for k, v in by_api.items() if k.startswith("elbv2:")}
        removed = [e["target"] for e in result["entries"] if e.get("api") == "elasticloadbalancing:DeregisterTargets"]
        lb_seconds = finished.get("lb", 0) - started.get("lb", 0)
        n_calls = sum(lb_calls.values())
        print(f"target groups: {total} ({total // 2} instance-type in the instance's VPC, {total - total // 2} "
              f"ip-type in a peered VPC)")
        print(f"isolation: {result['status']}, {calls.count} AWS calls in {elapsed:.2f} s")
        print(f"target-group look-up: {n_calls} calls in {lb_seconds:.2f} s "
              f"({1000 * lb_seconds / max(n_calls, 1):.2f} ms per call locally)")
        for api, n in sorted(lb_calls.items()):
            print(f"  {n} x {api}")
        print(f"found and deregistered: {removed == [arns[-1]]} (the peered VPC's ip target, AZ all)")
        print(f"on AWS at 40 ms per call, sequentially: ~{n_calls * 0.04:.0f} s of the task's 240 s "
              f"(the look-up stops {30} s before the budget ends and names what it did not check)")
        return 0 if result["status"] == "isolated" and removed == [arns[-1]] else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
