"""Helpers for the operations tests: the incident record, the manifest, the notifications (an SQS queue subscribed
to the responder's topic, as an on-call pager would be), a deployment's configuration changed for one test, an IAM
operation that AWS refuses, and the execution summary of a run that failed (its output is only in the history)."""
from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Iterator
from unittest import mock

import cli
from responder.aws.dynamodb import deserialize
from state_machines import local


def summary(run: local.Execution) -> dict:
    """Finalize's output: the execution output, or for a failed execution the Finalize state's output."""
    if run.output:
        return run.output
    for event in reversed(run.events):
        details = event.get("stateExitedEventDetails") or {}
        if details.get("name") == "Finalize":
            return json.loads(details["output"])
    raise AssertionError(f"the execution never left Finalize: {run.status} {run.error} {run.cause}")


def record(dep: local.Deployment, incident_id: str) -> dict | None:
    ddb = local.session(None, dep.region).client("dynamodb")
    return deserialize(ddb.get_item(TableName=dep.table_name, Key={"incidentId": {"S": incident_id}},
                                    ConsistentRead=True).get("Item"))


def evidence_object(dep: local.Deployment, key: str, version: str | None = None) -> bytes:
    s3 = dep.client("s3", dep.forensics_account)
    params = {"Bucket": dep.bucket, "Key": key, **({"VersionId": version} if version else {})}
    return s3.get_object(**params)["Body"].read()


def evidence_keys(dep: local.Deployment, prefix: str = "incidents/") -> list[str]:
    s3 = dep.client("s3", dep.forensics_account)
    return sorted(v["Key"] + "@" + v["VersionId"] for page in s3.get_paginator("list_object_versions").paginate(
        Bucket=dep.bucket, Prefix=prefix) for v in page.get("Versions", []))


class Inbox(cli.Inbox):
    """The CLI's on-call inbox on the deployment's topic, with a filter by incident."""

    def __init__(self, dep: local.Deployment):
        super().__init__(local.session(None, dep.region), dep.topic_arn)

    def about(self, incident_id: str) -> list[dict]:
        return [m for m in self.read() if m["message"].get("incidentId") == incident_id]


@contextmanager
def iam_refuses(operation: str, message: str = "not allowed") -> Iterator[None]:
    """The in-memory IAM answers `operation` (a moto IAMBackend method, e.g. "update_access_key") with AccessDenied,
    as AWS does when a policy denies it."""
    from moto.iam.exceptions import IAMException
    from moto.iam.models import IAMBackend

    class AccessDenied(IAMException):
        code = "AccessDenied"

    def refuse(self, *args, **kwargs):
        raise AccessDenied(message)

    with mock.patch.object(IAMBackend, operation, refuse):
        yield


@contextmanager
def configured(dep: local.Deployment, **env: str) -> Iterator[None]:
    """Change variables of every function's environment for the duration (as a redeployment would), then restore
    them. (Values only: the local runtime never removes a variable from the process environment.)"""
    lam = local.session(None, dep.region).client("lambda")
    changed = {**dep.environment, **env}
    try:
        for arn in dep.functions.values():
            lam.update_function_configuration(FunctionName=arn, Environment={"Variables": changed})
        yield
    finally:
        for arn in dep.functions.values():
            lam.update_function_configuration(FunctionName=arn, Environment={"Variables": dep.environment})
