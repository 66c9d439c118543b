"""cdk-nag (AwsSolutions) acknowledgements: every one scoped to the construct that causes it, with a reason.

cdk-nag 3 reports through CDK's policy validation (`Validations.of(app).add_plugins(AwsSolutionsChecks(app))`):
an unacknowledged finding fails `cdk synth`. An acknowledgement id is the rule (`AwsSolutions-SQS3`) or, for rules
with several findings per resource, the rule and the finding (`AwsSolutions-IAM5[Resource::*]`).
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:  # the CDK is imported lazily: tests read findings and templates without it
    from aws_cdk import App
    from constructs import IConstruct

MIN_REASON = 40  # characters: a reason says why, not just "ok"
_unapplied: list[list[tuple[str, str, str]]] = []


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding on `scope` (a resource or the construct that owns it; never a stack)."""
    from aws_cdk import Acknowledgment, Stack, Validations

    if len(reason.strip()) < MIN_REASON:
        raise ValueError(f"acknowledgement of {rule} needs a reason (at least {MIN_REASON} characters)")
    if Stack.is_stack(scope):
        raise ValueError(f"acknowledge {rule} on the construct that causes it, not on the whole stack")
    if _unapplied:
        _unapplied[-1].append((scope.node.path, rule, reason))
        return
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


@contextmanager
def unapplied() -> Iterator[list[tuple[str, str, str]]]:
    """Apps built inside get no acknowledgements: cdk-nag then reports every raw finding, and the list yielded
    holds what would have been acknowledged (construct path, rule, reason). Audits use it to prove that every
    acknowledgement answers a real finding."""
    _unapplied.append([])
    try:
        yield _unapplied[-1]
    finally:
        _unapplied.pop()


def add_checks(app: App) -> None:
    from aws_cdk import Validations
    from cdk_nag import AwsSolutionsChecks

    Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def flatten(node) -> str:
    """A resolved CloudFormation value as cdk-nag shows it in finding ids (its `flattenCfnReference`)."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if isinstance(node, dict) and "Fn::Join" in node:
        delimiter, items = node["Fn::Join"]
        return delimiter.join(flatten(i) for i in items)
    if isinstance(node, dict) and "Fn::Sub" in node:
        return flatten(node["Fn::Sub"])
    if isinstance(node, dict) and "Fn::GetAtt" in node:
        resource, attribute = node["Fn::GetAtt"]
        return f"<{flatten(resource)}.{flatten(attribute)}>"
    if isinstance(node, dict) and "Fn::ImportValue" in node:
        return flatten(node["Fn::ImportValue"])
    if isinstance(node, dict) and "Ref" in node:
        return f"<{flatten(node['Ref'])}>"
    return json.dumps(node, separators=(",", ":"))


def render(scope: IConstruct, value: str) -> str:
    """`value` (text with CDK tokens) as cdk-nag shows it."""
    from aws_cdk import Stack

    return flatten(Stack.of(scope).resolve(value))


def wildcard_acknowledgements(scope: IConstruct, document: dict, reasons: dict[str, str]) -> dict[str, str]:
    """Acknowledge, on `scope`, cdk-nag's IAM5 finding for each resource wildcard of the Allow statements of
    `document` (a stacks.policies document), with the reason given for the statement's Sid. Returns them."""
    found: dict[str, list[str]] = {}
    for statement in document["Statement"]:
        if statement["Effect"] != "Allow":
            continue
        resources = statement["Resource"]
        for resource in [resources] if isinstance(resources, str) else resources:
            text = render(scope, resource)
            if "*" in text:
                why = found.setdefault(f"AwsSolutions-IAM5[Resource::{text}]", [])
                if reasons[statement["Sid"]] not in why:
                    why.append(reasons[statement["Sid"]])
    for rule, why in found.items():
        acknowledge(scope, rule, " ".join(why))
    return {rule: " ".join(why) for rule, why in found.items()}
