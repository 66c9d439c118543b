"""The command-line tool, driven as a person would: `--local` (its own in-memory AWS, the incident table kept in a
file between commands), and the AWS path against the in-memory AWS standing in for an account."""
from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import cli
from state_machines import local
from tests.worlds.operations import configured
from tests.worlds.workflow import event

ROOT = Path(__file__).resolve().parent.parent
MEMBER, REGION = "444455556666", "eu-west-1"


def run_cli(*argv, state=None):
    """`python -m cli ...` in a subprocess, from the repository root, as the README shows it."""
    extra = ["--local-state", str(state)] if state else []
    return subprocess.run([sys.executable, "-m", "cli", *argv, *extra], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def main(capsys, *argv):
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- help and usage errors (nothing starts) -----------------------------------------------------------------
def test_help_teaches_commands_exit_codes_and_examples():
    done = run_cli("--help")
    assert done.returncode == 0
    for words in ("start", "status", "list", "--local", "exit codes:", "5  still running",
                  "python -m cli start --finding finding.json"):
        assert words in done.stdout
    start = run_cli("start", "--help")
    assert "--dry-run" in start.stdout and "plan only" in start.stdout and "--finding FILE" in start.stdout


@pytest.mark.parametrize("argv, message", [
    (["start"], "name what to contain"),
    (["start", "--user", "u", "--account", MEMBER], "a manual request needs --region, --reason"),
    (["start", "--user", "u", "--account", "4444", "--region", REGION, "--reason", "r"],
     "invalid request: manual.accountId: '4444' is not valid"),
    (["start", "--instance", "i-nothex", "--account", MEMBER, "--region", REGION, "--reason", "r"],
     "invalid request: manual.instances[0]"),
    (["start", "--finding", "f.json", "--user", "u"], "either --finding or --user"),
    (["start", "--finding", "no-such-file.json"], "cannot read no-such-file.json"),
])
def test_bad_requests_exit_2_naming_the_problem_before_anything_starts(capsys, tmp_path, argv, message):
    code, out, err = main(capsys, "--local", "--local-state", str(tmp_path / "s.json"), *argv)
    assert code == cli.USAGE and message in err and out == ""
    assert not (tmp_path / "s.json").exists()


def test_a_finding_file_that_is_not_a_finding_is_refused(capsys, tmp_path):
    bad = tmp_path / "f.json"
    bad.write_text(json.dumps({"detail-type": "GuardDuty Finding", "source": "aws.guardduty",
                               "detail": {"id": "x"}}))
    code, _, err = main(capsys, "start", "--finding", str(bad))
    assert code == cli.USAGE and "detail.accountId: is required" in err


# -- --local, across commands ----------------------------------------------------------------------------------
def test_local_commands_share_the_incident_table(capsys, tmp_path):
    """One story, in order (each command is its own in-memory AWS; the table is kept in the state file): a dry run
    from a real shell, a finding contained, its republication a duplicate, then status and list."""
    state = tmp_path / "incidents.json"
    finding = tmp_path / "finding.json"
    finding.write_text(json.dumps(event(account=MEMBER, region=REGION)))
    incident = f"gd-{json.loads(finding.read_text())['detail']['id']}"

    done = run_cli("--local", "start", "--user", "ci-deployer", "--role", "app-role", "--account", MEMBER,
                   "--region", REGION, "--reason", "drill", "--incident-id", "IR-DRILL-1", "--dry-run", state=state)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "local: created IAM user ci-deployer with an active access key" in out
    assert "incident IR-DRILL-1: dry_run_plan" in out and "plan (dry run, nothing changed): 6 change(s)" in out
    for api in ("iam:AttachUserPolicy", "iam:UpdateAccessKey", "iam:PutUserPolicy", "iam:PutRolePolicy",
                "s3:PutObject"):
        assert api in out
    assert "notified: IR DRY RUN (6 changes planned): user/ci-deployer +1 in 444455556666 [IR-DRILL-1]" in out

    code, out, err = main(capsys, "--local", "--local-state", str(state), "start", "--finding", str(finding))
    assert code == cli.OK, err
    assert f"incident {incident}: contained" in out
    assert "manifest: s3://ir-evidence-999988887777-eu-west-1/incidents/" in out and "sha256:" in out
    assert "notification delivered: Contained user/ci-deployer in account 444455556666" in out

    code, out, _ = main(capsys, "start", "--finding", str(finding), "--local", "--local-state", str(state))
    assert code == cli.OK and f"incident {incident}: duplicate" in out and "why: already answered by" in out

    code, out, _ = main(capsys, "status", incident, "--local", "--local-state", str(state))
    assert code == cli.OK
    assert f"incident {incident}: contained" in out and "duplicates 1" in out
    assert "iam:AttachUserPolicy" in out and "athena: SELECT eventTime" in out and "manifest: s3://" in out

    code, out, _ = main(capsys, "--local", "--local-state", str(state), "list")
    lines = out.splitlines()
    assert code == cli.OK and lines[0].split()[:3] == ["INCIDENT", "STATUS", "SEV"]
    assert {line.split()[0] for line in lines[1:]} == {incident, "IR-DRILL-1"}

    code, out, _ = main(capsys, "--local", "--local-state", str(state), "list", "--status", "dry_run_plan", "--json")
    assert [i["incidentId"] for i in json.loads(out)] == ["IR-DRILL-1"]


def test_local_status_of_an_unknown_incident_exits_3(capsys, tmp_path):
    code, _, err = main(capsys, "--local", "--local-state", str(tmp_path / "s.json"), "status", "IR-NOPE")
    assert code == cli.NOT_FOUND and "no incident IR-NOPE" in err


# -- the AWS path (the in-memory AWS standing in for the account) ---------------------------------------------
@pytest.fixture(scope="module")
def aws():
    with local.aws(region=REGION):
        dep = local.deploy(member_account=MEMBER, region=REGION)
        cli.POLL_SECONDS, saved = 0.05, cli.POLL_SECONDS
        yield dep
        cli.POLL_SECONDS = saved


def user(dep):
    name = f"u-{uuid.uuid4().hex[:8]}"
    dep.client("iam").create_user(UserName=name)
    dep.client("iam").create_access_key(UserName=name)
    return name


def test_aws_start_status_list(capsys, aws):
    name = user(aws)
    code, out, err = main(capsys, "--responder-region", REGION, "start", "--user", name, "--account", MEMBER,
                          "--region", REGION, "--reason", "key in a public repo", "--incident-id", "IR-AWS-1")
    assert code == cli.OK, err
    assert out.startswith("started arn:aws:states:eu-west-1:123456789012:execution:ir-responder-containment:cli-IR-AWS-1-")
    assert "incident IR-AWS-1: contained" in out
    assert f"IAMUser      arn:aws:iam::{MEMBER}:user/{name}" in out

    code, out, _ = main(capsys, "status", "IR-AWS-1", "--responder-region", REGION, "--json")
    item = json.loads(out)
    assert code == cli.OK and item["status"] == "contained" and item["origin"] == "manual"

    code, out, _ = main(capsys, "list", "--responder-region", REGION)
    assert code == cli.OK and "IR-AWS-1" in out


def test_aws_start_that_fails_to_contain_exits_1_with_the_summary(capsys, aws):
    name = user(aws)
    with configured(aws, IR_PROTECTED_PRINCIPALS="BreakGlass*"):
        code, out, _ = main(capsys, "--responder-region", REGION, "start", "--user", name, "--account", MEMBER,
                            "--region", REGION, "--reason", "r")
    assert code == cli.FAILED
    assert ": protection_unverified" in out and "ProtectionCheckFailed" in out
    assert "notified: IR NOT CONTAINED - PROTECTION UNVERIFIED" in out


def test_aws_no_wait_returns_at_once_and_says_how_to_follow(capsys, aws):
    code, out, _ = main(capsys, "--responder-region", REGION, "start", "--user", user(aws), "--account", MEMBER,
                        "--region", REGION, "--reason", "r", "--incident-id", "IR-AWS-2", "--no-wait")
    assert code == cli.OK and "follow it with: python -m cli status IR-AWS-2" in out
    # let the execution end inside this in-memory AWS: left running, its thread outlives the mock and keeps
    # retrying Lambda invocations against a real endpoint while later tests run (and measure memory)
    arn = out.split()[1]
    assert local.wait(arn, aws).status == "SUCCEEDED"


def test_aws_missing_table_and_state_machine_are_clear_errors(capsys, aws):
    code, _, err = main(capsys, "--responder-region", REGION, "--table", "nope", "status", "IR-AWS-1")
    assert code == cli.AWS_ERROR and "table nope not found in eu-west-1" in err
    code, _, err = main(capsys, "--responder-region", "us-west-2", "start", "--user", "u", "--account", MEMBER,
                        "--region", REGION, "--reason", "r")
    assert code == cli.AWS_ERROR and "ir-responder-containment not found" in err and "--responder-region" in err


def test_execution_names_fit_step_functions_rules():
    name = cli.execution_name("IR/" + "x" * 100)
    assert len(name) <= 80 and name.startswith("cli-IR-xxx")
    assert all(c.isalnum() or c in "-_" for c in name)


def test_local_verify_needs_a_running_in_memory_aws_and_start_verify_needs_local(capsys, tmp_path):
    done = run_cli("--local", "verify", "IR-1")  # a fresh process: no in-memory AWS runs there
    assert done.returncode == cli.USAGE and "reads the in-memory AWS of this process" in done.stderr
    code, out, err = main(capsys, "start", "--user", "u", "--account", MEMBER, "--region", REGION, "--reason", "r",
                          "--verify")
    assert code == cli.USAGE and "start --verify works with --local" in err


def test_a_local_start_verifies_its_own_chain_of_custody(tmp_path):
    done = run_cli("--local", "start", "--user", "ci-deployer", "--account", MEMBER, "--region", REGION,
                   "--reason", "custody check", "--verify", state=tmp_path / "s.json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verified: every manifest is signed and written once, and every checked snapshot matches the latest" in done.stdout


# -- analyze: the forensic workstation ----------------------------------------------------------------------
@pytest.mark.parametrize("argv, message", [
    (["analyze", "IR-1"], "name the workstation"),
    (["analyze", "IR-1", "--instance", "i-0123456789abcdef0", "--image", "ami-0123456789abcdef0"],
     "name the workstation"),
    (["analyze", "IR-1", "--image", "ami-0123456789abcdef0"], "analyze.workstation.subnetId"),
    (["analyze", "IR-1", "--instance", "i-nothex"], "analyze.workstation.instanceId"),
    (["analyze", "IR-1", "--instance", "i-0123456789abcdef0", "--live-response-port", "70000"],
     "analyze.liveResponse.port"),
])
def test_analyze_bad_requests_exit_2_before_anything_starts(capsys, argv, message):
    code, out, err = main(capsys, "--responder-region", REGION, *argv)
    assert code == cli.USAGE and message in err and out == ""


def test_analyze_is_not_offered_on_the_in_memory_aws(capsys, tmp_path):
    code, _, err = main(capsys, "--local", "--local-state", str(tmp_path / "s.json"), "analyze", "IR-1",
                        "--instance", "i-0123456789abcdef0")
    assert code == cli.USAGE and "keeps no evidence snapshots" in err


def test_aws_analyze_opens_the_disks_of_a_contained_instance_on_a_workstation(capsys, aws):
    ec2 = aws.client("ec2")
    zone = f"{REGION}a"
    subnet = ec2.describe_subnets(Filters=[{"Name": "availability-zone", "Values": [zone]}])["Subnets"][0]["SubnetId"]
    target = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=subnet)["Instances"][0]
    code, out, err = main(capsys, "--responder-region", REGION, "start", "--instance", target["InstanceId"],
                          "--account", MEMBER, "--region", REGION, "--reason", "r", "--incident-id", "IR-CLI-WS")
    assert code == cli.OK, out + err
    forensics = aws.client("ec2", aws.forensics_account)
    fsubnet = forensics.describe_subnets(Filters=[{"Name": "availability-zone", "Values": [zone]}])["Subnets"][0]
    ws = forensics.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=fsubnet["SubnetId"],
                                 TagSpecifications=[{"ResourceType": "instance", "Tags": [
                                     {"Key": "ir:purpose", "Value": "forensic-workstation"}]}])["Instances"][0]
    code, out, err = main(capsys, "--responder-region", REGION, "analyze", "IR-CLI-WS", "--instance",
                          ws["InstanceId"], "--reason", "open the disks")
    assert code == cli.OK, out + err
    assert "incident IR-CLI-WS: analysis_ready" in out and f"workstation {ws['InstanceId']} ({zone})" in out
    assert "/dev/sdf" in out and ": attached" in out


def test_release_builds_the_release_request_and_refuses_without_a_target():
    import cli

    args = cli.parser().parse_args(["release", "gd-abc", "--reason", "false positive", "--user", "ci", "--user", "ops",
                                    "--dry-run"])
    assert cli.release_input(args) == {"release": {"incidentId": "gd-abc", "reason": "false positive",
                                                   "iamUsers": ["ci", "ops"], "dryRun": True}}
    bare = cli.parser().parse_args(["release", "gd-abc", "--reason", "r"])
    with pytest.raises(cli.CliError):
        cli.release_input(bare)


def test_release_of_instances_roles_and_console_access_builds_the_documented_request():
    import cli

    args = cli.parser().parse_args(["release", "gd-abc", "--reason", "false positive", "--instance",
                                    "i-0123456789abcdef0", "--autoscaling", "--role", "app", "--user", "ci",
                                    "--console"])
    assert cli.release_input(args) == {"release": {
        "incidentId": "gd-abc", "reason": "false positive", "iamUsers": ["ci"], "roles": ["app"],
        "instances": ["i-0123456789abcdef0"], "restoreConsoleAccess": True, "restoreAutoScaling": True}}
    from responder.triage import normalize  # the request Triage accepts, as the README documents it

    incident = normalize(cli.release_input(args))
    assert incident["release"]["instances"] == ["i-0123456789abcdef0"] and incident["release"]["restoreAutoScaling"]
