"""`make demo`: deploy the responder into an in-memory AWS (security, member and forensics accounts), build a small
world, feed it GuardDuty findings through the rule's pattern and the real state machine, print what happened."""
from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "lambdas")]

from demo.show import say, timeline, title  # noqa: E402
from state_machines import local  # noqa: E402

MEMBER, FORENSICS, REGION = "444455556666", "999988887777", "eu-west-1"
EXAMPLES = ROOT / "tests" / "fixtures"


def example(name: str) -> dict:
    return copy.deepcopy(json.loads((EXAMPLES / name).read_text()))


def identity_world(dep) -> dict:
    iam, sts = dep.client("iam"), dep.client("sts")
    iam.create_user(UserName="ci-deployer")
    keys = [iam.create_access_key(UserName="ci-deployer")["AccessKey"]["AccessKeyId"] for _ in range(2)]
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{MEMBER}:root"}, "Action": "sts:AssumeRole"}]}
    role_id = iam.create_role(RoleName="app-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["RoleId"]
    session = sts.assume_role(RoleArn=f"arn:aws:iam::{MEMBER}:role/app-role", RoleSessionName="attacker")
    return {"user": "ci-deployer", "keys": keys, "role": "app-role", "principal": f"{role_id}:attacker",
            "session_key": session["Credentials"]["AccessKeyId"]}


def show_user(dep, name: str) -> None:
    iam = dep.client("iam")
    attached = [p["PolicyName"] for p in iam.list_attached_user_policies(UserName=name)["AttachedPolicies"]]
    keys = [f"{k['AccessKeyId']}={k['Status']}" for k in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]]
    inline = iam.list_user_policies(UserName=name)["PolicyNames"]
    say(f"AWS now: user {name}: attached {attached}; keys {keys}; inline {inline}", 2)
    if "AWSRevokeOlderSessions" in inline:
        doc = iam.get_user_policy(UserName=name, PolicyName="AWSRevokeOlderSessions")["PolicyDocument"]
        say(f"  AWSRevokeOlderSessions denies credentials issued before "
            f"{doc['Statement'][0]['Condition']['DateLessThan']['aws:TokenIssueTime']}", 2)


def show_role(dep, name: str) -> None:
    iam = dep.client("iam")
    inline = iam.list_role_policies(RoleName=name)["PolicyNames"]
    say(f"AWS now: role {name}: inline {inline}", 2)
    if "AWSRevokeOlderSessions" in inline:
        doc = iam.get_role_policy(RoleName=name, PolicyName="AWSRevokeOlderSessions")["PolicyDocument"]
        say(f"  every session of {name} issued before "
            f"{doc['Statement'][0]['Condition']['DateLessThan']['aws:TokenIssueTime']} is now denied "
            f"(including the attacker's live session)", 2)


def show_instance(before: dict, after: dict) -> None:
    for key in after:
        if before.get(key) != after[key]:
            say(f"{key}: {before.get(key)}  ->  {after[key]}", 4)


def show_evidence(dep, evidence: dict) -> None:
    ec2_forensics = local.session(dep.forensics_account, dep.region).client("ec2")
    for snap in evidence.get("snapshots", []):
        enc = "unencrypted" if not snap.get("encrypted") else f"encrypted ({snap['kmsKeyId'].rsplit('/', 1)[-1][:8]}...)"
        say(f"{snap['device']} {snap['volumeId']} {enc}", 4)
        say(f"source {snap['source']['snapshotId']}  {snap['source'].get('digest')}", 6)
        if snap.get("sharingCopy"):
            say(f"re-encrypted under the sharing key: {snap['sharingCopy']['snapshotId']} (shared with the forensics "
                f"account only; share now {snap.get('shared')})", 6)
        copy_ = snap.get("forensicsCopy") or {}
        if copy_:
            tags = {t["Key"]: t["Value"] for t in ec2_forensics.describe_snapshots(
                SnapshotIds=[copy_["snapshotId"]])["Snapshots"][0].get("Tags", [])}
            say(f"forensics copy {copy_['snapshotId']} in {dep.forensics_account} under the forensics key "
                f"{copy_.get('kmsKeyId', '').rsplit('/', 1)[-1][:8]}...: digest "
                f"{'matches' if copy_.get('digest') == snap['source'].get('digest') else 'DIFFERS'}", 6)
            say("tags: " + ", ".join(f"{k}={v[:60]}" for k, v in sorted(tags.items()) if k.startswith("ir:")), 8)


def show_records(run) -> None:
    out = run.output or {}
    if out.get("record"):
        say(f"incident record: {json.dumps(out['record'])[:300]}", 2)
    if out.get("manifest"):
        say(f"evidence manifest: {json.dumps(out['manifest'])[:300]}", 2)
    if out.get("notification"):
        say(f"notification: {json.dumps(out['notification'])[:400]}", 2)


def finding(kind: str, world: dict, **changes) -> dict:
    ev = example("guardduty-iam-user.json")
    details = ev["detail"]["resource"]["accessKeyDetails"]
    if kind == "user":
        details.update(userName=world["user"], accessKeyId=world["keys"][0])
    elif kind == "role":
        ev["detail"]["id"] = "e1d2c3b4a5968778695a4b3c2d1e0f99"
        ev["detail"]["type"] = "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS"
        details.update(userType="AssumedRole", userName=world["role"], accessKeyId=world["session_key"],
                       principalId=world["principal"])  # the issuing role's RoleId: GuardDuty's principalId
    ev["detail"].update(changes)
    return ev


def main() -> int:
    title("GuardDuty auto-responder - demo on an in-memory AWS (no account, no network)")
    with local.aws(region=REGION):
        dep = local.deploy(member_account=MEMBER, forensics_account=FORENSICS, region=REGION)
        say(f"Deployed: responder in security account {dep.security_account}, member stack in {MEMBER}, "
            f"forensics stack in {FORENSICS}, region {REGION}. State machine: {dep.state_machine_arn}")
        from cli import Inbox, render_record

        inbox = Inbox(local.session(None, REGION), dep.topic_arn)  # the on-call subscription to the topic
        world = identity_world(dep)
        say(f"World in {MEMBER}: IAM user {world['user']} with two active keys {world['keys']}; role "
            f"{world['role']} with a live session ({world['session_key']}).")

        title("1. GuardDuty: a key of ci-deployer called ListBuckets from a threat-list IP (severity 5.3)")
        say("The runbook: quarantine the user (AWSCompromisedKeyQuarantineV2), deactivate its keys - never delete - "
            "and deny session tokens minted before now.")
        run = local.deliver(finding("user", world), dep)
        timeline(run)
        show_user(dep, world["user"])

        title("2. The same finding again: GuardDuty re-publishes it with a higher count")
        run = local.deliver(finding("user", world, service={**example("guardduty-iam-user.json")["detail"]["service"],
                                                           "count": 2}), dep)
        timeline(run)
        say("Nothing changes the second time.", 2)

        title("3. GuardDuty: the role app-role's credentials are used from outside AWS (severity 8)")
        say("IAM cannot invalidate issued role credentials; the responder denies every session issued before now.")
        run = local.deliver(finding("role", world, severity=8), dep)
        timeline(run)
        show_role(dep, world["role"])

        title("4. GuardDuty: an instance of the web tier queries a command-and-control domain (severity 8)")
        from demo import world_instance

        web = world_instance.build(dep)
        say(f"World: {web['instanceId']} behind a Classic ELB and an ALB target group, in Auto Scaling group "
            f"{web['autoScalingGroup']}, instance profile {web['instanceProfile']} (role with a live session), "
            f"three volumes: root unencrypted, one under aws/ebs, one under a customer key.")
        say("The runbook: capture metadata, protect from termination, take it out of its Auto Scaling group and "
            "load balancers, isolate it (connections cut), then snapshot every volume and hand copies to the "
            "forensics account under a key production cannot use, hashing each snapshot's block list.")
        before = world_instance.state(dep, web)
        ev = example("guardduty-instance.json")
        ev["detail"]["resource"]["instanceDetails"]["instanceId"] = web["instanceId"]
        run = local.deliver(ev, dep)
        timeline(run)
        say("AWS now (what changed on the instance):", 2)
        show_instance(before, world_instance.state(dep, web))
        say("Evidence chain:", 2)
        show_evidence(dep, (run.output or {}).get("instances", [{}])[0].get("evidence") or {})
        incident_id = (run.output or {}).get("incidentId")

        title("4b. A low-severity finding (3.9): the EventBridge rule does not match it")
        ev = finding("user", world, severity=3.9, id="0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a")
        say("rule matched" if local.matches_rule(ev) else "rule did not match: no execution, nothing changes", 2)

        title("5. A root-credentials finding: IAM cannot contain root; the record lists the manual steps")
        ev = finding("user", world, id="f00dfeedf00dfeedf00dfeedf00dfeed")
        ev["detail"]["resource"]["accessKeyDetails"] = {"userType": "Root", "principalId": MEMBER}
        timeline(local.deliver(ev, dep))

        title("6. A person starts a dry run from the console: what would happen to role ops-admin?")
        dep.client("iam").create_role(RoleName="ops-admin", AssumeRolePolicyDocument="{}")
        run = local.execute({"manual": {"accountId": MEMBER, "region": REGION, "reason": "suspicious console login",
                                        "roles": ["ops-admin"], "incidentId": "IR-2024-0602", "dryRun": True}}, dep)
        timeline(run)
        show_role(dep, "ops-admin")

        title("7. Bad input is refused before anything changes, naming the field")
        run = local.execute({"manual": {"accountId": "4444", "region": REGION, "reason": "x", "iamUsers": ["a"]}}, dep)
        say(f"{run.status} {run.error}: {json.loads(run.cause)['errorMessage']}", 2)

        title("8. What the on-call sees: the incident record, the evidence manifest, the notifications")
        from responder.aws.dynamodb import IncidentTable

        item = IncidentTable(local.session(None, REGION).client("dynamodb"), dep.table_name).get(incident_id)
        print(render_record(item))
        say("notifications received (one per incident outcome):", 2)
        for message in inbox.read():
            say(f"[{message['attributes'].get('priority', '')}] {message['subject']}", 4)
        say(f"(CLI: python -m cli status {incident_id} | python -m cli list)", 2)

        title("9. Follow the attacker: a stolen key assumed a role, minted a key, created a grant, read a secret")
        import io
        import tempfile

        import cli
        from tests.worlds.pivots import attack, finding as stolen_key_finding, world as pivot_world

        w = pivot_world(dep)
        attack(w)  # made with the stolen key: CloudTrail holds the attacker's own events
        run = local.deliver(stolen_key_finding(w), dep)
        timeline(run)
        out = run.output or {}
        say(f"pivots: {json.dumps(out.get('pivots', {}).get('statuses', {}))}; rotation list: "
            f"{out.get('rotation', {}).get('count', 0)} item(s), nothing rotated automatically", 2)
        stored = out.get("report") or {}
        for kind in ("html", "csv"):
            if stored.get(kind, {}).get("uri"):
                say(f"report stored with the evidence: {stored[kind]['uri']} ({stored[kind]['sha256']})", 2)
        folder = tempfile.mkdtemp(prefix="ir-report-")
        written = io.StringIO()
        cli.main(["--local", "report", out.get("incidentId", ""), "--out", folder, "--region", REGION,
                  "--forensics-account", FORENSICS, "--bucket", dep.bucket], out=written)
        for line in written.getvalue().splitlines():
            say("written: " + line, 2)
        say("(opened nothing: open the .html in a browser, the .csv in a spreadsheet)", 2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
