"""cdk-nag (AwsSolutions) with zero unacknowledged findings and no stale acknowledgement, cfn-lint over every
synthesized template, the shipped ASL validated, and the synthesized rule's pattern on severities 3.9 / 4.0."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from stacks import names
from stacks.catalog import ASL_PATH, FUNCTIONS, ROOT
from stacks.config import load_context
from stacks.nag import MIN_REASON
from tests.conftest import load_example
from tests.worlds.infra import EXTERNAL_ID, assembly, multi  # noqa: F401 - fixtures

CFN_LINT = Path(sys.executable).parent / "cfn-lint"
ASL_VALIDATOR = ROOT / "node_modules" / ".bin" / "asl-validator"
# W3005 (DependsOn already implied by a GetAtt): CDK writes explicit DependsOn for roles' policies on purpose.
CFN_LINT_IGNORED = ("W3005",)


# ---------------------------------------------------------------------------------------------------------------
# cdk-nag
# ---------------------------------------------------------------------------------------------------------------
def test_cdk_nag_reports_no_unacknowledged_finding(assembly):  # noqa: F811
    # the synth itself fails on an unacknowledged finding (cdk-nag reports through CDK's policy validation); the
    # report it leaves must be empty too, warnings included
    report = json.loads((assembly.outdir / "validation-report.json").read_text())
    assert [v for r in report["pluginReports"] for v in r.get("violations", [])] == []


def _acknowledgements(assembly) -> list[tuple[str, str, str]]:  # noqa: F811
    found = []
    for stack in assembly.stacks:
        for path, entries in assembly.metadata(stack).items():
            for entry in entries:
                if entry["type"] == "aws:cdk:acknowledged-rules":
                    for rule, reason in entry["data"].items():
                        found.append((path, rule.split("::", 1)[1], reason))
    return found


def test_every_acknowledgement_is_reasoned_and_scoped_to_a_construct_not_a_stack(assembly):  # noqa: F811
    acknowledgements = _acknowledgements(assembly)
    assert acknowledgements
    for path, rule, reason in acknowledgements:
        assert rule.startswith("AwsSolutions-"), rule
        assert len(reason) >= MIN_REASON, (path, rule, reason)
        assert path.count("/") >= 2, f"{rule} acknowledged on the whole stack {path}"
        if rule.startswith("AwsSolutions-IAM5"):
            assert "[" in rule, "IAM5 acknowledgements name the finding (the wildcard resource)"


def test_every_acknowledgement_answers_a_real_finding_and_every_finding_is_acknowledged():
    """Build the app without acknowledgements and let cdk-nag report every raw finding: each acknowledgement
    must cover one of them (no stale acknowledgement), and each finding must be acknowledged (the same as the
    synth proves, but here per finding)."""
    from cdk_nag import AwsSolutionsChecks

    from stacks.app import build_app
    from stacks.nag import unapplied

    with unapplied() as acknowledgements:
        app, _ = build_app({**load_context(), "externalId": EXTERNAL_ID}, nag=False)
    report = AwsSolutionsChecks().validate_scope(app)
    findings = {(r.construct_path, v.rule_name) for v in report.violations for r in v.violating_resources}
    assert findings, "cdk-nag found nothing at all: is it running?"

    def covered(finding_path: str, rule: str) -> bool:
        return any(rule == a_rule and (finding_path + "/").startswith(a_path + "/")
                   for a_path, a_rule, _ in acknowledgements)

    assert [f for f in sorted(findings) if not covered(*f)] == []
    stale = [(path, rule) for path, rule, _ in acknowledgements
             if not any(rule == f_rule and (f_path + "/").startswith(path + "/") for f_path, f_rule in findings)]
    assert stale == []


# ---------------------------------------------------------------------------------------------------------------
# cfn-lint
# ---------------------------------------------------------------------------------------------------------------
def _cfn_lint(*templates: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(CFN_LINT), "--ignore-checks", *CFN_LINT_IGNORED, "--", *map(str, templates)],
                          capture_output=True, text=True, timeout=300)


def test_cfn_lint_is_clean_on_every_synthesized_template(assembly):  # noqa: F811
    templates = sorted(assembly.outdir.glob("*.template.json"))
    assert len(templates) == len(assembly.stacks)
    result = _cfn_lint(*templates)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_would_catch_a_broken_template(multi, tmp_path):  # noqa: F811
    template = copy.deepcopy(multi.template(names.RESPONDER_STACK))
    function = next(r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function")
    function["Properties"]["Runtime"] = "python2.1"
    broken = tmp_path / "broken.template.json"
    broken.write_text(json.dumps(template))
    result = _cfn_lint(broken)
    assert result.returncode != 0 and "python2.1" in result.stdout


# ---------------------------------------------------------------------------------------------------------------
# The state machine definition
# ---------------------------------------------------------------------------------------------------------------
def _substituted_definition() -> str:
    definition = ASL_PATH.read_text()
    for spec in FUNCTIONS:
        definition = definition.replace(
            "${%s}" % spec.substitution, f"arn:aws:lambda:eu-west-1:111111111111:function:{spec.function_name}")
    assert "${" not in definition
    return definition


def _asl_validate(definition: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(ASL_VALIDATOR), "--json-definition", definition], capture_output=True, text=True,
                          timeout=120)


def test_the_shipped_asl_is_valid_once_the_function_arns_are_substituted():
    result = _asl_validate(_substituted_definition())
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_asl_validator_would_catch_a_broken_definition():
    broken = json.loads(_substituted_definition())
    first = broken["StartAt"]
    broken["States"][first]["Next"] = "NoSuchState"
    result = _asl_validate(json.dumps(broken))
    assert result.returncode != 0


# ---------------------------------------------------------------------------------------------------------------
# The rule's pattern, read from the template
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rule_pattern(multi):  # noqa: F811
    (rule,) = [r for r in multi.resources(names.RESPONDER_STACK, "AWS::Events::Rule").values()
               if r["Properties"]["Name"] == names.RULE_NAME]  # the exposed-key rules: tests/infra/test_signal_rules.py
    return rule["Properties"]["EventPattern"]


def _matches(pattern: dict, event: dict) -> bool:
    from moto.events.models import EventPattern

    return bool(EventPattern.load(json.dumps(pattern)).matches_event(event))


@pytest.mark.parametrize("severity, matches", [(3.9, False), (4.0, True), (4, True), (8.9, True), (1.0, False)])
def test_the_synthesized_rule_matches_severity_four_and_above_only(rule_pattern, severity, matches):
    event = load_example("guardduty-iam-user.json")
    event["detail"]["severity"] = severity
    assert _matches(rule_pattern, event) is matches


def test_the_synthesized_rule_ignores_other_sources(rule_pattern):
    event = load_example("guardduty-iam-user.json")
    event["detail"]["severity"] = 8.0
    assert _matches(rule_pattern, event)
    event["source"] = "aws.securityhub"
    assert not _matches(rule_pattern, event)
