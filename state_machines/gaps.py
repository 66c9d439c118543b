"""Where moto does not behave like AWS, the local runtime fills the gap - never by skipping production code.

Each `gaps_*` module patches one service and documents the AWS behaviour it restores; `install` applies them all
inside `local.aws()` and the ExitStack undoes them on exit.
"""
from __future__ import annotations

from contextlib import ExitStack


def install(stack: ExitStack) -> None:
    from state_machines import (
        gaps_athena, gaps_autoscaling, gaps_cloudtrail, gaps_ebs, gaps_ec2, gaps_iam, gaps_lake, gaps_s3,
        gaps_snapshot_lock, gaps_sts,
    )

    for module in (gaps_sts, gaps_ec2, gaps_autoscaling, gaps_ebs, gaps_snapshot_lock, gaps_cloudtrail, gaps_s3,
                   gaps_iam, gaps_athena, gaps_lake):
        module.install(stack)
