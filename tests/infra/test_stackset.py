"""The member stack for a whole organization (stacks.member_stack_set): the service-managed StackSet's properties, the
member template it carries (the member stack, standalone, any account's), and the configuration errors named."""
from __future__ import annotations

import json
import re

import pytest

from stacks import names
from stacks.config import Config, ConfigError, load_context
from tests.worlds.infra import EXTERNAL_ID

ORG = {"organizationId": "o-abcdef1234", "organizationalUnitIds": ["ou-ab12-cdef5678", "r-ab12"],
       "managementAccount": "555555555555", "delegatedAdministrator": "111111111111",
       "excludeAccounts": ["666666666666"]}

# the accounts of the target OUs only (child OUs included): an OU id anywhere on the path, the root at its place
TARGET_PATHS = ["o-abcdef1234/*/ou-ab12-cdef5678/*", "o-abcdef1234/r-ab12/*"]


def _config(**organization) -> Config:
    return Config.from_context({**load_context(), "externalId": EXTERNAL_ID, "organization": {**ORG, **organization}})


@pytest.fixture(scope="module")
def org(tmp_path_factory):
    """(config, IrMemberStackSets template, embedded member template, IrMember-<account> template): one synth."""
    from stacks.app import build_app

    context = {**load_context(), "externalId": EXTERNAL_ID, "organization": ORG}
    outdir = tmp_path_factory.mktemp("org")
    app, _ = build_app(context, outdir=str(outdir))
    assembly = app.synth()
    _OUTDIR.append(outdir)
    template = assembly.get_stack_by_name(names.MEMBER_STACK_SETS).template
    (stack_set,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::CloudFormation::StackSet"]
    config = Config.from_context(context)
    member = assembly.get_stack_by_name(names.member_stack(config.member_accounts[0])).template
    _TEMPLATES.update({n: assembly.get_stack_by_name(n).template for n in (names.RESPONDER_STACK,
                                                                         names.FORENSICS_STACK)})
    return config, template, stack_set, member


_TEMPLATES: dict[str, dict] = {}
_OUTDIR: list = []


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


def _role(template: dict, name: str) -> list[dict]:
    (role,) = [r for r in template["Resources"].values()
               if r["Type"] == "AWS::IAM::Role" and r["Properties"].get("RoleName") == name]
    return [s for p in role["Properties"].get("Policies", []) for s in p["PolicyDocument"]["Statement"]]


def test_the_stack_set_is_service_managed_and_deploys_to_new_accounts(org):
    config, _, stack_set, _ = org
    props = stack_set["Properties"]
    assert props["PermissionModel"] == "SERVICE_MANAGED"
    assert props["CallAs"] == "DELEGATED_ADMIN"  # delegatedAdministrator named: not the management account
    assert props["AutoDeployment"] == {"Enabled": True, "RetainStacksOnAccountRemoval": False}
    assert props["ManagedExecution"] == {"Active": True}
    assert props["Capabilities"] == ["CAPABILITY_NAMED_IAM"]
    assert props["OperationPreferences"] == {"FailureTolerancePercentage": 10, "MaxConcurrentPercentage": 25,
                                             "RegionConcurrencyType": "PARALLEL"}
    (group,) = props["StackInstancesGroup"]
    assert group["Regions"] == [config.region]  # IAM roles are account-wide: one region only
    targets = group["DeploymentTargets"]
    assert targets["OrganizationalUnitIds"] == ORG["organizationalUnitIds"]
    assert targets["AccountFilterType"] == "DIFFERENCE"
    # never the forensics or the security account, nor the accounts cdk deploy gives the member stack
    assert targets["Accounts"] == sorted({"666666666666", config.forensics_account, config.security_account,
                                          *config.member_accounts})
    assert "TemplateURL" not in props


def test_the_stack_set_stack_goes_to_the_administrator_account(org):
    from stacks.app import build_app

    config, _, _, _ = org
    assert config.organization.administrator_account == "111111111111"
    assert _config(delegatedAdministrator="").organization.call_as == "SELF"
    assert _config(delegatedAdministrator="").organization.administrator_account == "555555555555"
    _, stacks = build_app({**load_context(), "externalId": EXTERNAL_ID}, nag=False)
    assert names.MEMBER_STACK_SETS not in stacks, "only when the context names an organization"


def test_the_embedded_template_is_the_member_stack(org):
    _, _, stack_set, member = org
    body = stack_set["Properties"]["TemplateBody"]
    assert len(body.encode()) < 51_200
    embedded = json.loads(body)

    def shape(template):
        return sorted((k, r["Type"]) for k, r in template["Resources"].items())

    assert shape(embedded) == shape(member)
    roles = {r["Properties"]["RoleName"] for r in embedded["Resources"].values() if r["Type"] == "AWS::IAM::Role"}
    assert roles == {names.MEMBER_ROLE_NAME, names.MEMBER_READ_ROLE_NAME, names.MEMBER_RELEASE_ROLE_NAME,
                     names.DENY_ALL_ROLE_NAME}
    assert set(embedded["Outputs"]) == set(member["Outputs"])


def test_the_embedded_template_runs_in_any_account(org):
    config, _, stack_set, _ = org
    body = stack_set["Properties"]["TemplateBody"]
    embedded = json.loads(body)
    assert "Parameters" not in embedded and "Rules" not in embedded, "no CDK bootstrap parameter or rule"
    types = {r["Type"] for r in embedded["Resources"].values()}
    assert "AWS::CloudFormation::Stack" not in types, "no nested stacks"
    assert "AWS::CDK::Metadata" not in types
    assert "Fn::ImportValue" not in body and "cdk-hnb659fds" not in body and "aws:asset" not in body
    # the only account ids written in: the security account (trust) and the forensics account (sharing key)
    assert set(re.findall(r"(?<!\d)\d{12}(?!\d)", body)) == {config.security_account, config.forensics_account}
    assert '{"Ref":"AWS::AccountId"}' in body


def test_the_member_stacks_of_cdk_deploy_are_unchanged_by_org_mode(org):
    _, _, _, member = org
    account = [a for a in ("333333333333",)]
    assert account[0] in json.dumps(member), "IrMember-<account> keeps its literal account"


@pytest.mark.parametrize("change, key", [
    ({"organizationId": "o-short"}, "organization.organizationId"),
    ({"organizationId": ""}, "organization.organizationId"),
    ({"organizationalUnitIds": []}, "organization.organizationalUnitIds"),
    ({"organizationalUnitIds": ["ou-bad"]}, r"organization.organizationalUnitIds\[0\]"),
    ({"organizationalUnitIds": ["r-ab12", "123"]}, r"organization.organizationalUnitIds\[1\]"),
    ({"managementAccount": "12345"}, "organization.managementAccount"),
    ({"managementAccount": "222222222222"}, "organization.managementAccount"),  # the forensics account
    ({"delegatedAdministrator": "abc"}, "organization.delegatedAdministrator"),
    ({"delegatedAdministrator": "222222222222"}, "organization.delegatedAdministrator"),
    ({"excludeAccounts": ["1"]}, "organization.excludeAccounts"),
    ({"maxConcurrentPercentage": 0}, "organization.maxConcurrentPercentage"),
    ({"failureTolerancePercentage": 101}, "organization.failureTolerancePercentage"),
    ({"retainStacksOnAccountRemoval": "maybe"}, "organization.retainStacksOnAccountRemoval"),
    ({"regionz": ["eu-west-1"]}, "organization.regionz"),
    # look-alikes: two ids in one (a newline between), upper case, an OU id with a path or a wildcard
    ({"organizationalUnitIds": ["ou-ab12-cdef5678\nr-ab12"]}, r"organization.organizationalUnitIds\[0\]"),
    ({"organizationalUnitIds": ["ou-ab12-*"]}, r"organization.organizationalUnitIds\[0\]"),
    ({"organizationalUnitIds": ["r-ab12/ou-ab12-cdef5678"]}, r"organization.organizationalUnitIds\[0\]"),
    ({"organizationId": "O-ABCDEF1234"}, "organization.organizationId"),
    ({"organizationId": "o-abcdef1234\no-zzzzzzzzzz"}, "organization.organizationId"),
    ({"excludeAccounts": ["66666666666*"]}, "organization.excludeAccounts"),
    ({"maxConcurrentPercentage": "25%"}, "organization.maxConcurrentPercentage"),
])
def test_each_configuration_error_names_its_key(change, key):
    with pytest.raises(ConfigError, match=f"context '{key}'"):
        _config(**change)


def test_the_organization_key_is_a_json_object_or_its_text():
    text = json.dumps(ORG)
    config = Config.from_context({**load_context(), "externalId": EXTERNAL_ID, "organization": text})
    assert config.organization.organization_id == "o-abcdef1234"
    with pytest.raises(ConfigError, match="context 'organization'"):
        Config.from_context({**load_context(), "externalId": EXTERNAL_ID, "organization": "{not json"})
    with pytest.raises(ConfigError, match="context 'organization'"):
        Config.from_context({**load_context(), "externalId": EXTERNAL_ID, "layout": "single-account",
                             "organization": ORG})
    assert Config.from_context({**load_context(), "externalId": EXTERNAL_ID}).organization is None


def test_the_organization_key_must_be_an_object():
    for value in (["o-abcdef1234"], 42, True):
        with pytest.raises(ConfigError, match="context 'organization'"):
            Config.from_context({**load_context(), "externalId": EXTERNAL_ID, "organization": value})


def test_the_management_account_is_never_a_deployment_target_to_exclude():
    """StackSets never deploys to the management account (AWS, DeploymentTargets): it is not listed, whether it is
    in memberAccounts (its IrMember-<account> stack by cdk deploy) or not; duplicates are listed once."""
    config = _config(excludeAccounts=["555555555555", "666666666666", "666666666666"])
    assert "555555555555" not in config.organization.exclude_accounts
    assert config.organization.exclude_accounts.count("666666666666") == 1


def test_a_second_synth_gives_the_same_template_body(org):
    """The StackSet changes only when the member stack does: an unchanged app re-synthesized gives byte-identical
    TemplateBody, so a redeploy of IrMemberStackSets starts no operation in every account."""
    from stacks.member_stack_set import member_template, template_body

    config, _, stack_set, _ = org
    assert template_body(member_template(config, nag=False)) == stack_set["Properties"]["TemplateBody"]


def test_retaining_stacks_is_a_choice():
    assert _config(retainStacksOnAccountRemoval=True).organization.retain_stacks_on_account_removal is True


def test_a_template_too_large_for_template_body_is_refused():
    from stacks.member_stack_set import TemplateTooLarge, template_body

    with pytest.raises(TemplateTooLarge):
        template_body({"Resources": {"Big": {"Type": "AWS::SNS::Topic", "Properties": {"x": "y" * 51_200}}}})


def test_org_mode_lets_the_tasks_assume_member_roles_in_any_account_of_the_organization(org):
    from stacks import tasks
    from stacks.catalog import FUNCTIONS
    from tests.worlds.infra import flat

    config = org[0]
    for spec in FUNCTIONS:
        statements = {s["Sid"]: s for s in _role(_TEMPLATES[names.RESPONDER_STACK], names.function_role_name(spec))}
        wanted = tasks.member_role_names(spec)
        if not wanted:
            assert "AssumeMemberRolesInTheOrganization" not in statements, spec.key
            continue
        statement = statements["AssumeMemberRolesInTheOrganization"]
        assert statement["Action"] in ("sts:AssumeRole", ["sts:AssumeRole"])
        assert sorted(flat(r) for r in _listed(statement["Resource"])) == sorted(
            f"arn:<AWS::Partition>:iam::*:role/{n}" for n in wanted)
        assert statement["Condition"] == {
            "StringEquals": {"aws:ResourceOrgID": ORG["organizationId"]},
            "ForAnyValue:StringLike": {"aws:ResourceOrgPaths": TARGET_PATHS},
            "StringNotEquals": {"aws:ResourceAccount": sorted({config.forensics_account, config.security_account})}}


def test_org_mode_lets_the_forensics_role_use_the_organizations_sharing_keys_through_ec2(org):
    from tests.worlds.infra import flat

    config = org[0]
    statements = {s["Sid"]: s for s in _role(_TEMPLATES[names.FORENSICS_STACK], names.FORENSICS_ROLE_NAME)}
    found = [s for sid, s in statements.items() if sid.startswith("OrganizationSharingKeys")]
    assert found
    for statement in found:
        assert [flat(r) for r in _listed(statement["Resource"])] == [
            f"arn:<AWS::Partition>:kms:{config.region}:*:key/*"]
        assert statement["Condition"]["StringEquals"] == {"aws:ResourceOrgID": ORG["organizationId"]}
        assert statement["Condition"]["ForAnyValue:StringLike"] == {"aws:ResourceOrgPaths": TARGET_PATHS}
        assert statement["Condition"]["StringLike"] == {"kms:ViaService": "ec2.*.amazonaws.com"}


def test_without_an_organization_no_statement_names_one():
    from stacks.app import build_app

    app, _ = build_app({**load_context(), "externalId": EXTERNAL_ID}, nag=False)
    assembly = app.synth()
    for name in (names.RESPONDER_STACK, names.FORENSICS_STACK):
        text = json.dumps(assembly.get_stack_by_name(name).template)
        assert "aws:ResourceOrgID" not in text and "OrganizationSharingKeys" not in text


def test_org_mode_adds_no_unexplained_analyzer_finding(org):
    """cloudsplaining (strictest mode) on the organization-mode roles: every finding already explained in
    stacks.policies.ANALYZER_REASONS, no privilege escalation."""
    from stacks import policies
    from tests.infra.test_iam_analyzer import findings

    class _Templates:
        stacks = dict.fromkeys(_TEMPLATES)

        @staticmethod
        def template(name):
            return _TEMPLATES[name]

    found = findings(_Templates)
    assert found and sorted(found - set(policies.ANALYZER_REASONS)) == []
    assert not [f for f in found if f[1] == "PrivilegeEscalation"]


def test_org_mode_passes_cdk_nag_and_cfn_lint(org, tmp_path):
    """The organization-mode app: cdk-nag reports nothing unacknowledged (the synth would fail), and cfn-lint is
    clean on every template, the member template the StackSet carries included."""
    from tests.infra.test_nag_lint_asl import _cfn_lint

    _, _, stack_set, _ = org
    (outdir,) = _OUTDIR
    report = json.loads((outdir / "validation-report.json").read_text())
    assert [v for r in report["pluginReports"] for v in r.get("violations", [])] == []
    embedded = tmp_path / "member-stack-set-body.template.json"
    embedded.write_text(stack_set["Properties"]["TemplateBody"])
    templates = sorted(outdir.glob("*.template.json"))
    assert any(t.name.startswith(names.MEMBER_STACK_SETS) for t in templates)
    result = _cfn_lint(*templates, embedded)
    assert result.returncode == 0, result.stdout + result.stderr


def test_org_mode_acknowledgements_answer_real_findings(monkeypatch):
    """The organization-mode statements' cdk-nag acknowledgements (wildcard accounts) are each needed, and each
    finding is acknowledged, per construct: as tests/infra/test_nag_lint_asl.py proves for the default app. (The
    member template's own app is checked by its synth, with the member stack's acknowledgements.)"""
    from cdk_nag import AwsSolutionsChecks

    from stacks import member_stack_set
    from stacks.app import build_app
    from stacks.nag import unapplied

    template = member_stack_set.member_template
    monkeypatch.setattr(member_stack_set, "member_template", lambda config, nag=True: template(config, nag=False))

    with unapplied() as acknowledgements:
        app, _ = build_app({**load_context(), "externalId": EXTERNAL_ID, "organization": ORG}, nag=False)
    report = AwsSolutionsChecks().validate_scope(app)
    findings = {(r.construct_path, v.rule_name) for v in report.violations for r in v.violating_resources}
    assert findings

    def covers(a_path: str, a_rule: str, f_path: str, f_rule: str) -> bool:
        return a_rule == f_rule and (f_path + "/").startswith(a_path + "/")

    assert [f for f in sorted(findings) if not any(covers(p, r, *f) for p, r, _ in acknowledgements)] == []
    # the member template's own app (paths IrMember/...) is not in this app: its synth proves its findings covered
    assert [(p, r) for p, r, _ in acknowledgements
            if not p.startswith("IrMember/") and not any(covers(p, r, *f) for f in findings)] == []
    org_reasons = [reason for _, _, reason in acknowledgements if "Organization mode" in reason]
    assert org_reasons, "the organization-mode wildcards are acknowledged with their own reasons"


def test_the_readme_documents_every_organization_key():
    from pathlib import Path

    from stacks.config import ORGANIZATION_KEYS

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    (row,) = [line for line in readme.splitlines() if line.startswith("| `organization` |")]
    assert [k for k in ORGANIZATION_KEYS if f"`{k}`" not in row] == []
    assert "### Deploy to a whole organization" in readme and "| `IrMemberStackSets` |" in readme


def test_the_target_paths_match_exactly_the_accounts_of_the_target_ous():
    """aws:ResourceOrgPaths of an account is o-<org>/r-<root>/<ou>/.../ (IAM's global condition keys): the patterns
    admit an account directly in or below a target OU, and none in a sibling OU or another organization."""
    from fnmatch import fnmatchcase

    paths = _config(organizationalUnitIds=["ou-ab12-cdef5678"]).organization.resource_org_paths
    assert paths == ("o-abcdef1234/*/ou-ab12-cdef5678/*",)

    def admitted(path):
        return any(fnmatchcase(path, p) for p in paths)

    assert admitted("o-abcdef1234/r-ab12/ou-ab12-cdef5678/")
    assert admitted("o-abcdef1234/r-ab12/ou-ab12-00000000/ou-ab12-cdef5678/ou-ab12-11111111/")
    assert not admitted("o-abcdef1234/r-ab12/ou-ab12-cdef5679/")
    assert not admitted("o-abcdef1234/r-ab12/")  # the root itself (the management account, if not targeted)
    assert not admitted("o-zzzzzzzzzz/r-ab12/ou-ab12-cdef5678/")


def test_the_pinned_cdk_cli_synthesizes_the_same_stack_set(org, tmp_path):
    """`cdk synth` with the key on the command line (JSON text), as the README deploys it: the CLI's own context
    (version reporting, path metadata) adds nothing to the member template, which is byte for byte the one built
    in-process; the StackSet stack goes to the delegated administrator's account."""
    import os
    import subprocess

    from tests.worlds.infra import OFFLINE_ENV, ROOT, synth_command

    _, _, stack_set, _ = org
    outdir = tmp_path / "cdk.out"
    result = subprocess.run(synth_command(outdir, {"externalId": EXTERNAL_ID, "organization": json.dumps(ORG)}),
                            cwd=ROOT, env={**os.environ, **OFFLINE_ENV}, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    manifest = json.loads((outdir / "manifest.json").read_text())
    assert manifest["artifacts"][names.MEMBER_STACK_SETS]["environment"].startswith("aws://111111111111/")
    template = json.loads((outdir / f"{names.MEMBER_STACK_SETS}.template.json").read_text())
    (cli_stack_set,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::CloudFormation::StackSet"]
    assert cli_stack_set["Properties"]["TemplateBody"] == stack_set["Properties"]["TemplateBody"]


def test_organization_sharing_keys_in_every_region_of_the_estate():
    """Organization mode with several regions: the forensics role may use the organization's sharing keys in each
    region of the estate (a later account's instance in any of them), only through EC2, only in the organization."""
    from responder.permissions import forensics_actions
    from stacks import policies
    regions = ("eu-west-1", "us-east-1", "ap-southeast-2")
    document = policies.forensics_policy(
        partition="aws", account="999988887777", region="eu-west-1", security_account="111122223333",
        actions=forensics_actions(), key_arn="arn:aws:kms:eu-west-1:999988887777:key/k", bucket="b",
        member_accounts=("444455556666",), key_regions=regions, organization_id="o-a1b2c3d4e5",
        organization_paths=("o-a1b2c3d4e5/r-ab12/ou-ab12-cdef5678/",))
    org = [s for s in document["Statement"] if s.get("Sid", "").startswith("OrganizationSharingKeys")]
    assert org
    for statement in org:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert sorted(resources) == sorted(f"arn:aws:kms:{r}:*:key/*" for r in regions)
        assert statement["Condition"]["StringEquals"]["aws:ResourceOrgID"] == "o-a1b2c3d4e5"
