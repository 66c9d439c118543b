"""Time from a finding to the first containment call, modelled from measured parts: the cold start of each Lambda
on the path (measured here, as bench.cold_start does) and the AWS calls each makes before that first change
(counted from an execution of the shipped state machine in the local runtime), priced with the latencies below.

    .venv/bin/python -m bench.first_containment [--runs 3]

The latencies are model parameters, not measurements (the local runtime has no network): typical same-region API
round trips, EventBridge's and Step Functions' documented "typically within" figures. Change them with flags to see
what dominates. Two cases: every function cold (the first finding after a deploy or a quiet hour) and warm.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "lambdas")]

MEMBER, FORENSICS, REGION = "444455556666", "999988887777", "eu-west-1"
# The first call that contains, per branch: the user's quarantine, the role's session revocation, the instance's
# first security-group move.
CONTAINMENT = {"iam:AttachUserPolicy", "iam:PutUserPolicy", "iam:PutRolePolicy", "ec2:ModifyNetworkInterfaceAttribute"}


def _example(name: str) -> dict:
    return copy.deepcopy(json.loads((ROOT / "tests" / "fixtures" / name).read_text()))


def paths() -> dict[str, list[dict]]:
    """Per scenario, the handler calls of one execution up to and including the first containment call."""
    from demo import world_instance
    from state_machines import local

    found: dict[str, list[dict]] = {}
    with local.aws(region=REGION):
        dep = local.deploy(member_account=MEMBER, forensics_account=FORENSICS, region=REGION)
        iam = dep.client("iam")
        iam.create_user(UserName="ci-deployer")
        key = iam.create_access_key(UserName="ci-deployer")["AccessKey"]["AccessKeyId"]
        ev = _example("guardduty-iam-user.json")
        ev["detail"]["resource"]["accessKeyDetails"]["accessKeyId"] = key
        found["IAM user"] = local.execute(ev, dep).aws_calls
        world = world_instance.build(dep)
        ev = _example("guardduty-instance.json")
        ev["detail"]["resource"]["instanceDetails"]["instanceId"] = world["instanceId"]
        found["EC2 instance"] = local.execute(ev, dep).aws_calls
    for name, calls in found.items():
        first = next(i for i, c in enumerate(calls) if c["api"] in CONTAINMENT)
        found[name] = calls[: first + 1]
    return found


def handler_modules() -> dict[str, str]:
    """function name -> handler module, from the deployment catalog."""
    from stacks.catalog import FUNCTIONS

    return {spec.function_name: spec.handler.rsplit(".", 1)[0] for spec in FUNCTIONS}


def main(argv: list[str] | None = None) -> int:
    import os

    from bench import cold_start

    os.environ.setdefault("LOG_LEVEL", "WARNING")  # the handlers' INFO lines would drown the table
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh interpreters per cold-start measurement")
    parser.add_argument("--api-ms", type=float, default=40.0, help="one AWS API round trip (same region)")
    parser.add_argument("--assume-ms", type=float, default=120.0, help="one sts:AssumeRole")
    parser.add_argument("--delivery-ms", type=float, default=500.0, help="EventBridge rule -> StartExecution")
    parser.add_argument("--transition-ms", type=float, default=50.0, help="Step Functions state -> Lambda invoke")
    parser.add_argument("--init-ms", type=float, default=150.0,
                        help="Lambda's own part of a cold start (sandbox, runtime), before our imports")
    args = parser.parse_args(argv)

    routes = paths()
    modules = handler_modules()
    on_path = {modules[c["function"]] for calls in routes.values() for c in calls}
    # the clients a task makes before its first change (the record's come after it): cold_start.AS_FILED
    cold = {module: cold_start.measure(module, cold_start.AS_FILED[module], args.runs)["total_ms"]
            for module in sorted(on_path)}
    print(f"finding -> first containment call (model; cold starts measured here, median of {args.runs}; API "
          f"{args.api_ms:.0f} ms, AssumeRole {args.assume_ms:.0f} ms, delivery {args.delivery_ms:.0f} ms, "
          f"transition {args.transition_ms:.0f} ms, Lambda init {args.init_ms:.0f} ms)")
    print(f"{'scenario':<14}{'handler':<20}{'calls':>6}{'cold ms':>10}{'warm ms':>10}  calls before the first change")
    for scenario, calls in routes.items():
        total_cold = total_warm = args.delivery_ms
        functions: list[str] = []
        for call in calls:
            if not functions or functions[-1] != call["function"]:
                functions.append(call["function"])
        for function in functions:
            key = modules[function]
            mine = [c["api"] for c in calls if c["function"] == function]
            api_ms = sum(args.assume_ms if api == "sts:AssumeRole" else args.api_ms for api in mine)
            start = args.init_ms + cold.get(key, 0.0)
            total_cold += args.transition_ms + start + api_ms
            total_warm += args.transition_ms + api_ms
            print(f"{scenario:<14}{key:<20}{len(mine):>6}{start + api_ms:>10.0f}{api_ms:>10.0f}  {', '.join(mine)}")
        print(f"{scenario:<14}{'= total':<20}{len(calls):>6}{total_cold:>10.0f}{total_warm:>10.0f}  "
              f"(cold start share when cold: {1 - (total_warm / total_cold):.0%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
