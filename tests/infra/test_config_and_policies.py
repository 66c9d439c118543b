"""The deployment configuration (CDK context) and the policy builders: pure functions, no synth."""
from __future__ import annotations

import pytest

from stacks import policies
from stacks.config import Config, ConfigError, load_context

BASE = {"region": "eu-west-1", "securityAccount": "111111111111", "forensicsAccount": "222222222222",
        "memberAccounts": ["333333333333"], "externalId": "ir-responder-test"}


def test_the_example_context_in_cdk_json_is_valid_once_the_external_id_is_set():
    config = Config.from_context({**load_context(), "externalId": "ir-responder-test"})
    assert config.layout == "multi-account"
    assert len({config.security_account, config.forensics_account, *config.member_accounts}) >= 3
    assert config.evidence_lock_mode == "COMPLIANCE"


def test_the_example_external_id_of_cdk_json_is_refused():
    with pytest.raises(ConfigError, match="context 'externalId': 'ir-responder-example-change-me' is the example"):
        Config.from_context(load_context())


@pytest.mark.parametrize("change, message", [
    ({"memberAccounts": ["333333333333", "222222222222"]},
     "context 'memberAccounts': the forensics account 222222222222 can never be a member account"),
    ({"memberAccounts": ["333333333333", "111111111111"]},
     "context 'memberAccounts': names the security account 111111111111; set securityAccountIsMember=true"),
    ({"quarantinePolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
     "context 'quarantinePolicyArn': expected one of AWS's AWSCompromisedKeyQuarantine\\* policies"),
    ({"quarantinePolicyArn": "arn:aws:iam::aws:policy/PowerUserAccess"}, "context 'quarantinePolicyArn'"),
    ({"quarantinePolicyArn": "arn:aws:iam::444444444444:policy/Quarantine"},
     "context 'quarantinePolicyArn': the customer managed policy .* exists only in account 444444444444"),
    ({"quarantinePolicyArn": "arn:aws:iam::222222222222:policy/Quarantine"},
     "context 'quarantinePolicyArn': .* belongs to the forensics or security account"),
    ({"evidenceLockMode": "NONE"}, "context 'evidenceLockMode'"),
    ({"evidenceRetentionDays": 36501}, "context 'evidenceRetentionDays': 1 to 36500 days"),
    ({"evidenceCustodianRole": "ir-responder-member"}, "context 'evidenceCustodianRole'"),
    ({"securityAccountIsMember": "perhaps"}, "context 'securityAccountIsMember'"),
])
def test_a_harmful_context_is_refused_naming_the_key(change, message):
    with pytest.raises(ConfigError, match=message):
        Config.from_context({**BASE, **change})


def test_what_the_refusals_still_allow():
    allowed = Config.from_context({**BASE, "memberAccounts": ["333333333333", "111111111111"],
                                   "securityAccountIsMember": "true"})
    assert allowed.member_accounts == ("333333333333", "111111111111") and allowed.security_account_is_member
    for name in ("AWSCompromisedKeyQuarantine", "AWSCompromisedKeyQuarantineV2", "AWSCompromisedKeyQuarantineV3",
                 "AWSCompromisedKeyQuarantineV4"):
        arn = f"arn:aws:iam::aws:policy/{name}"
        assert Config.from_context({**BASE, "quarantinePolicyArn": arn}).quarantine_policy_arn == arn
    own = "arn:aws:iam::333333333333:policy/ir/Quarantine"
    assert Config.from_context({**BASE, "quarantinePolicyArn": own}).quarantine_policy_arn == own
    assert Config.from_context({**BASE, "evidenceLockMode": "governance"}).evidence_lock_mode == "GOVERNANCE"


def test_single_account_puts_everything_into_the_security_account():
    config = Config.from_context({**BASE, "layout": "single-account"})
    assert config.forensics_account == config.security_account == "111111111111"
    assert config.member_accounts == ("111111111111",)


def test_lists_from_the_command_line_are_comma_separated_or_json():
    assert Config.from_context({**BASE, "memberAccounts": "333333333333, 444444444444"}).member_accounts == (
        "333333333333", "444444444444")
    assert Config.from_context({**BASE, "memberAccounts": '["444444444444"]'}).member_accounts == ("444444444444",)
    assert Config.from_context({**BASE, "observeOnly": "true"}).observe_only is True


@pytest.mark.parametrize("change, key", [
    ({"securityAccount": "12345"}, "securityAccount"),
    ({"forensicsAccount": None}, "forensicsAccount"),
    ({"memberAccounts": []}, "memberAccounts"),
    ({"memberAccounts": ["33333333333x"]}, "memberAccounts"),
    ({"externalId": ""}, "externalId"),
    ({"region": "Europe"}, "region"),
    ({"layout": "two-accounts"}, "layout"),
    ({"keyScope": "some"}, "keyScope"),
    ({"logRetentionDays": 100}, "logRetentionDays"),
    ({"observeOnly": "maybe"}, "observeOnly"),
    ({"forensicsKeyArn": "arn:aws:kms:eu-west-1:333333333333:key/abc"}, "forensicsKeyArn"),
    ({"notificationEmail": "soc"}, "notificationEmail"),
    ({"protectedPrincipals": "BreakGlass*"}, "protectedPrincipals"),
])
def test_a_bad_context_names_the_key(change, key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        Config.from_context({**BASE, **change})


def test_wildcard_actions_are_never_granted():
    for bad in ("ec2:Describe*", "*", "iam:*", "s3:Get?bject", "nocolon"):
        with pytest.raises(policies.UnscopedAction):
            policies.member_policy(partition="aws", account="1", security_account="2", actions=[bad],
                                   deny_all_role_arn="r", quarantine_policy_arn="q", forensics_account="3")


def test_a_responder_action_without_a_resource_scope_fails_the_synth():
    with pytest.raises(policies.UnscopedAction, match="ec2:DescribeInstances"):
        policies.function_policy(actions=["ec2:DescribeInstances"], assume_role_arns=["r"], table_arn="t",
                                 topic_arn="s", topic_key_arn="k", log_group_arn="l", executions_arn="e")


def test_member_policy_scopes_what_iam_can_scope():
    doc = policies.member_policy(
        partition="aws", account="333333333333", security_account="111111111111",
        actions=["iam:PassRole", "iam:AttachUserPolicy", "iam:GetUser", "iam:PutRolePolicy", "ec2:DescribeInstances"],
        deny_all_role_arn="arn:aws:iam::333333333333:role/deny", quarantine_policy_arn="arn:aws:iam::aws:policy/Q",
        forensics_account="222222222222")
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert by_sid["PassOnlyTheDenyAllRole"]["Resource"] == ["arn:aws:iam::333333333333:role/deny"]
    assert by_sid["PassOnlyTheDenyAllRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}
    assert by_sid["AttachOnlyTheQuarantinePolicy"]["Condition"] == {
        "ArnEquals": {"iam:PolicyARN": "arn:aws:iam::aws:policy/Q"}}
    assert by_sid["IamUsers"]["Resource"] == ["arn:aws:iam::333333333333:user/*"]
    assert by_sid["IamRoles"]["Resource"] == ["arn:aws:iam::333333333333:role/*"]
    assert by_sid["ContainAndCollect"] == {"Sid": "ContainAndCollect", "Effect": "Allow",
                                           "Action": ["ec2:DescribeInstances"], "Resource": ["*"]}
    assert policies.allowed_actions(doc) == {"iam:PassRole", "iam:AttachUserPolicy", "iam:GetUser",
                                             "iam:PutRolePolicy", "ec2:DescribeInstances"}


def test_publishing_to_the_encrypted_topic_brings_the_topic_key_actions():
    doc = policies.function_policy(actions=["sns:Publish"], assume_role_arns=["r"], table_arn="t", topic_arn="s",
                                   topic_key_arn="k", log_group_arn="l", executions_arn="e")
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert by_sid["NotificationTopicKey"] == {"Sid": "NotificationTopicKey", "Effect": "Allow",
                                              "Action": sorted(policies.TOPIC_KEY_ACTIONS), "Resource": ["k"]}
    assert policies.function_extra_actions(["sns:Publish"]) == set(policies.LOG_ACTIONS) | set(
        policies.TOPIC_KEY_ACTIONS)


# -- every region (README "Every region") ---------------------------------------------------------------------
def test_regions_default_to_the_responders_region_alone():
    config = Config.from_context(BASE)
    assert config.estate_regions == ("eu-west-1",) and config.extra_regions == ()
    assert config.evidence_region == "eu-west-1"


def test_regions_list_the_estate_responders_region_first_without_duplicates():
    config = Config.from_context({**BASE, "regions": "us-east-1,eu-west-1,us-east-1,ap-southeast-2",
                                  "forensicsRegion": "eu-central-1"})
    assert config.estate_regions == ("eu-west-1", "us-east-1", "ap-southeast-2")
    assert config.extra_regions == ("us-east-1", "ap-southeast-2")
    assert config.evidence_region == "eu-central-1"
    assert Config.from_context({**BASE, "regions": ["eu-west-1", "us-west-2"]}).extra_regions == ("us-west-2",)


@pytest.mark.parametrize("change, message", [
    ({"regions": "us-east-1,us-west-2"}, "context 'regions': must include the responder's region eu-west-1"),
    ({"regions": ["eu-west-1", "mars-north-1x"]}, r"context 'regions\[1\]': expected a region"),
    ({"regions": "eu-west-1,../../etc"}, r"context 'regions\[1\]'"),
    ({"regions": {"eu-west-1": True}}, "context 'regions': expected a list"),
    ({"regions": "[eu-west-1"}, "context 'regions': not a JSON list"),
    ({"regions": ",".join(["eu-west-1"] + [f"us-x{chr(97 + i // 26)}{chr(97 + i % 26)}-1" for i in range(45)])}, "context 'regions': at most 40"),
    ({"forensicsRegion": "Frankfurt"}, "context 'forensicsRegion': expected a region"),
    ({"forensicsRegion": "eu-central-1",
      "forensicsKeyArn": "arn:aws:kms:eu-west-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
     "context 'forensicsKeyArn': expected the ARN of a key of the forensics account in eu-central-1"),
])
def test_a_bad_region_configuration_is_refused_naming_the_key(change, message):
    with pytest.raises(ConfigError, match=message):
        Config.from_context({**BASE, **change})


def test_the_sharing_key_admits_ec2_of_its_region_and_of_the_forensics_region_only():
    one = policies.sharing_key_policy(partition="aws", account="333333333333", forensics_account="222222222222",
                                      region="eu-west-1")
    both = policies.sharing_key_policy(partition="aws", account="333333333333", forensics_account="222222222222",
                                       region="us-east-1", forensics_region="eu-central-1")
    assert one["Statement"][1]["Condition"]["StringEquals"]["kms:ViaService"] == "ec2.eu-west-1.amazonaws.com"
    for statement in both["Statement"][1:]:
        assert statement["Condition"]["StringEquals"]["kms:ViaService"] == [
            "ec2.us-east-1.amazonaws.com", "ec2.eu-central-1.amazonaws.com"]
