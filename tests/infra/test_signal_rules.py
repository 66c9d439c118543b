"""The exposed-key signals' rules (issue 14 item 1): the responder's rules for Trusted Advisor "Exposed Access Keys"
and AWS Health AWS_RISK_CREDENTIALS_EXPOSED, and the forwarding rules in the regions those events are published in
(Trusted Advisor: us-east-1; Health's global events: us-east-1, backup us-west-2) when the responder runs elsewhere."""
from __future__ import annotations

import pytest

from stacks import names, policies
from stacks.catalog import SIGNAL_PATTERNS, SIGNAL_REGIONS, signal_forwarders
from tests.worlds.infra import as_list, assembly, flat, multi, role_statements, single  # noqa: F401

P = "<AWS::Partition>"


def test_the_responder_starts_the_state_machine_for_each_signal_like_for_findings(assembly):  # noqa: F811
    rules = {r["Properties"]["Name"]: r["Properties"]
             for r in assembly.resources(names.RESPONDER_STACK, "AWS::Events::Rule").values()}
    guardduty = rules[names.RULE_NAME]["Targets"]
    for suffix, pattern in SIGNAL_PATTERNS.items():
        rule = rules[names.signal_rule(suffix)]
        assert rule["EventPattern"] == pattern and rule["State"] == "ENABLED"
        assert rule["Targets"] == guardduty  # same state machine, role, retries and dead-letter queue


def test_forwarders_exist_in_every_published_region_the_responder_is_not_in(assembly):  # noqa: F811
    config = assembly.config
    expected = signal_forwarders(region=config.region, security_account=config.security_account,
                                 member_accounts=config.member_accounts)
    assert expected  # cdk.json's region is eu-west-1: every member forwards from us-east-1 and us-west-2
    stacks = {name: env for name, env in assembly.stacks.items() if name.startswith("IrSignals-")}
    assert stacks == {names.signal_forwarder_stack(a, r): f"aws://{a}/{r}" for a, r in expected}
    bus = f"arn:{P}:events:{config.region}:{config.security_account}:event-bus/default"
    for (account, region), suffixes in expected.items():
        stack = names.signal_forwarder_stack(account, region)
        rules = {r["Properties"]["Name"]: r["Properties"]
                 for r in assembly.resources(stack, "AWS::Events::Rule").values()}
        assert set(rules) == {names.FORWARD_RULE_PREFIX + s for s in suffixes}
        assert set(suffixes) == {s for s, published in SIGNAL_REGIONS.items() if region in published}
        (role,) = assembly.resources(stack, "AWS::IAM::Role").values()
        assert role["Properties"]["RoleName"] == names.forwarder_role_name(region)
        for suffix in suffixes:
            rule = rules[names.FORWARD_RULE_PREFIX + suffix]
            assert rule["EventPattern"] == SIGNAL_PATTERNS[suffix]
            (target,) = rule["Targets"]
            assert flat(target["Arn"]) == bus and "RoleArn" in target
        # the role: trusted by EventBridge for these rules of this account only, may only put events on that bus
        (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": "events.amazonaws.com"}
        assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": account}
        assert sorted(flat(a) for a in as_list(trust["Condition"]["ArnLike"]["aws:SourceArn"])) == sorted(
            f"arn:{P}:events:{region}:{account}:rule/{names.FORWARD_RULE_PREFIX}{s}" for s in suffixes)
        statements = role_statements(role)
        assert [(s["Effect"], as_list(s["Action"]), [flat(r) for r in as_list(s["Resource"])])
                for s in statements] == [("Allow", ["events:PutEvents"], [bus])]
        assert not assembly.resources(stack, "AWS::IAM::Policy")  # no grant beside the declared policy


def test_the_responder_bus_lets_in_only_the_member_forwarder_roles_for_aws_sources(multi):  # noqa: F811
    config = multi.config
    (policy,) = multi.resources(names.RESPONDER_STACK, "AWS::Events::EventBusPolicy").values()
    statement = policy["Properties"]["Statement"]
    assert policy["Properties"]["EventBusName"] == "default"
    assert flat(statement["Resource"]) == f"arn:{P}:events:{config.region}:{config.security_account}:event-bus/default"
    assert (statement["Effect"], statement["Action"]) == ("Allow", "events:PutEvents")
    assert sorted(flat(p) for p in statement["Principal"]["AWS"]) == sorted(
        f"arn:{P}:iam::{a}:root" for a in config.member_accounts)
    assert sorted(flat(a) for a in statement["Condition"]["ArnEquals"]["aws:PrincipalArn"]) == sorted(
        f"arn:{P}:iam::{a}:role/{names.forwarder_role_name(r)}" for a in config.member_accounts
        for r in ("us-east-1", "us-west-2"))
    # a custom event can never carry an aws.* source: nothing a member's principal writes itself gets in
    assert statement["Condition"]["StringEquals"] == {"events:source": ["aws.trustedadvisor", "aws.health"]}


def test_a_single_account_deployment_forwards_within_its_account_without_a_bus_policy(single):  # noqa: F811
    assert not single.resources(names.RESPONDER_STACK, "AWS::Events::EventBusPolicy")
    account = single.config.security_account
    assert {n for n in single.stacks if n.startswith("IrSignals-")} == {
        names.signal_forwarder_stack(account, "us-east-1"), names.signal_forwarder_stack(account, "us-west-2")}


@pytest.mark.parametrize("region, members, expected", [
    ("us-east-1", ("111111111111",), {("111111111111", "us-west-2"): ("health-credentials-exposed",)}),
    ("us-west-2", ("111111111111",), {("111111111111", "us-east-1"): ("trusted-advisor-exposed-keys",
                                                                      "health-credentials-exposed")}),
    ("us-east-1", ("333333333333",), {("333333333333", "us-east-1"): ("trusted-advisor-exposed-keys",
                                                                      "health-credentials-exposed"),
                                      ("333333333333", "us-west-2"): ("health-credentials-exposed",)}),
])
def test_where_forwarders_are_needed(region, members, expected):
    assert signal_forwarders(region=region, security_account="111111111111", member_accounts=members) == expected


def test_no_bus_policy_when_every_forwarder_is_in_the_security_account():
    assert policies.signal_bus_statement(partition="aws", bus_arn="b", security_account="1",
                                         forwarders=[("1", "us-east-1")]) is None
