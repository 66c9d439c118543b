"""The incident report without AWS: the runbook's spreadsheet (CSV sorted by eventName, formulas neutralized), and one
self-contained HTML page where every attacker-shaped string is escaped."""
from __future__ import annotations

import csv
import io
import json
import re
from html.parser import HTMLParser

from responder import report

SCRIPT = "<script>alert('x')</script>"


def event(name: str, when: str, *, key: str = "AKIAEXAMPLE0000001", agent: str = "aws-cli/2", params=None,
          mfa: str | None = None, error: str | None = None, event_id: str | None = None) -> dict:
    identity = {"type": "IAMUser", "arn": "arn:aws:iam::444455556666:user/ci-deployer", "accessKeyId": key}
    if mfa is not None:
        identity["sessionContext"] = {"attributes": {"mfaAuthenticated": mfa}}
    detail = {"eventName": name, "eventTime": when, "eventSource": "iam.amazonaws.com", "awsRegion": "us-east-1",
              "sourceIPAddress": "198.51.100.7", "userAgent": agent, "userIdentity": identity,
              "requestParameters": params or {}, "eventID": event_id or f"id-{name}-{when}"}
    if error:
        detail["errorCode"] = error
    return {"EventId": detail["eventID"], "EventName": name, "EventTime": when, "Username": "ci-deployer",
            "CloudTrailEvent": json.dumps(detail)}


EVENTS = [event("ListBuckets", "2024-06-02T01:00:00Z"),
          event("CreateAccessKey", "2024-06-02T01:05:00Z", params={"userName": "backup-svc"}),
          event("AssumeRole", "2024-06-02T00:50:00Z", agent="=HYPERLINK(\"http://evil\")"),
          event("GetSecretValue", "2024-06-02T01:10:00Z", params={"secretId": SCRIPT}, error="AccessDenied")]
DOCUMENTS = [{"events": EVENTS}, {"events": EVENTS[:1]}]  # an event in two Regions' captures is listed once
RECORD = {
    "incidentId": "IR-1", "status": "contained", "duplicates": 1,
    "timeline": [{"time": "2024-06-02T02:00:02.118Z", "task": "identity", "step": "deactivate_access_keys",
                  "status": "done", "api": "iam:UpdateAccessKey", "target": "AKIAEXAMPLE0000001", "requestId": "r-1"}],
    "pivots": [{"kind": "created_key", "target": f"AKIA{SCRIPT}", "account": "444455556666", "eventId": "e1",
                "eventName": "CreateAccessKey", "eventTime": "2024-06-02T01:05:00Z", "action": "deactivated",
                "status": "done", "command": "aws iam update-access-key ..."}],
    "rotation": [{"order": 2, "kind": "secret", "arn": f"arn:aws:secretsmanager:::secret:{SCRIPT}",
                  "reason": "read by the principal", "eventId": "e2", "command": "aws secretsmanager rotate-secret"},
                 {"order": 1, "kind": "access_key", "arn": "AKIAEXAMPLE0000001", "reason": "long-lived key",
                  "eventId": "e0", "command": "aws iam create-access-key"}],
    "results": {"evidence:i-1": {"snapshots": [{"volumeId": "vol-1", "source": {"snapshotId": "snap-a",
                                                                                  "digest": "sha256:ab"},
                                                 "forensicsCopy": {"snapshotId": "snap-b", "digest": "sha256:ab",
                                                                   "lock": {"LockState": "compliance"}}}]}},
}
INCIDENT = {"incidentId": "IR-1", "identities": [{"type": "IAMUser", "name": "ci-deployer",
                                                  "accessKeyId": "AKIAEXAMPLE0000001"}]}
FINDING = {"detail": {"service": {"eventFirstSeen": "2024-06-01T23:10:00.000Z", "count": 3}}}
SUMMARY = {"incidentId": "IR-1", "outcome": "contained", "findingType": "UnauthorizedAccess:IAMUser/Tor",
           "severity": 5.3, "accountId": "444455556666"}


def _build(**changes):
    params = dict(record=RECORD, incident=INCIDENT, summary=SUMMARY, finding=FINDING, documents=DOCUMENTS,
                  captures=[{"principal": f"user/{SCRIPT}", "key": "incidents/IR-1/cloudtrail/u.json",
                             "sha256": "sha256:cd", "events": 4, "readBack": "digest matches"}],
                  manifest={"key": "incidents/IR-1/manifest-0001.json", "sha256": "sha256:ef",
                            "signature": {"key": "incidents/IR-1/manifest-0001.sig.json", "keyId": "arn:k"}},
                  generated_at="2024-06-02T02:01:00Z")
    params.update(changes)
    return report.build(**params)


def test_the_csv_is_the_runbooks_spreadsheet_sorted_by_event_name():
    _, sheet, facts = _build()
    text = sheet.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert [r["eventName"] for r in rows] == ["AssumeRole", "CreateAccessKey", "GetSecretValue", "ListBuckets"]
    assert facts["events"] == 4 and facts["eventsLeftOut"] == 0
    assert rows[2]["errorCode"] == "AccessDenied" and json.loads(rows[1]["requestParameters"]) == {
        "userName": "backup-svc"}


def test_a_cell_a_spreadsheet_would_run_as_a_formula_is_neutralized():
    _, sheet, _ = _build()
    rows = list(csv.DictReader(io.StringIO(sheet.decode("utf-8").lstrip("\ufeff"))))
    assumed = next(r for r in rows if r["eventName"] == "AssumeRole")
    assert assumed["userAgent"] == "'=HYPERLINK(\"http://evil\")"
    assert not [c for r in rows for c in r.values() if c and c[0] in "=+@"]


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text, self.attrs = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_data(self, data):
        self.text.append(data)


def test_every_attacker_string_is_escaped_and_the_page_loads_nothing():
    page, _, _ = _build()
    text = page.decode("utf-8")
    assert SCRIPT not in text and "<script" not in text.lower()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    parsed = _Page()
    parsed.feed(text)
    assert "script" not in parsed.tags and "img" not in parsed.tags and "link" not in parsed.tags
    assert not [a for a in parsed.attrs if a[0] in ("src", "href") or a[0].startswith("on")]
    assert "default-src 'none'" in text  # the browser is told so too
    assert not re.search(r"(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text.split("<style>")[0] + text.split("</style>")[1])


def test_the_page_holds_the_timeline_pivots_rotation_evidence_and_the_three_lessons():
    page, _, _ = _build()
    text = page.decode("utf-8")
    # one timeline, oldest first: the attacker's AssumeRole (00:50) ... the responder's key deactivation (02:00)
    assert text.index("AssumeRole") < text.index("CreateAccessKey") < text.index("identity deactivate_access_keys")
    assert 'class="attacker"' in text and 'class="responder"' in text
    assert "What the attacker minted (pivots)" in text and "Rotate, in this order" in text
    assert text.index("long-lived key") < text.index("read by the principal")  # rotation in its order
    assert "incidents/IR-1/manifest-0001.sig.json" in text and "snap-b" in text
    for lesson in ("Long-lived keys", "MFA", "Unread findings"):
        assert f"<b>{lesson}</b>" in text
    assert "the credentials in the finding were a long-term access key (AKIAEXAMPLE0000001)" in text
    assert "the attacker created 1 new access key(s)" in text
    assert "the finding had been published 3 time(s)" in text


def test_the_lessons_say_what_the_data_shows_and_no_more():
    lessons = {x["lesson"]: x for x in report.after_action(INCIDENT, FINDING, report.rows_of(DOCUMENTS)[0], RECORD)}
    assert lessons["Long-lived keys"]["seen"] is True
    assert lessons["MFA"]["seen"] is True and "carry no MFA" in lessons["MFA"]["showed"]
    gap = lessons["Unread findings"]
    assert gap["seen"] is True and "2.8 h later" in gap["showed"]  # first seen 23:10, first change 02:00
    quiet = report.after_action({"identities": []}, {"manual": {}}, [], {})
    assert [x["seen"] for x in quiet] == [None, None, None]
    assert "a person started this response" in quiet[2]["showed"]
    mfa_only = [report.event_row(event("ConsoleLogin", "2024-06-02T01:00:00Z", key="ASIAX", mfa="true"))]
    assert report.after_action({"identities": []}, {}, mfa_only, {})[1]["seen"] is False


def test_the_report_is_bounded_whatever_the_incidents_size(monkeypatch):
    monkeypatch.setattr(report, "MAX_EVENTS", 50)
    monkeypatch.setattr(report, "MAX_TIMELINE", 20)
    many = [event("GetObject", f"2024-06-02T01:{i // 60:02d}:{i % 60:02d}Z", agent="A" * 10_000, event_id=f"e{i}")
            for i in range(120)]
    page, sheet, facts = _build(documents=[{"events": many}])
    assert facts["events"] == 50 and facts["eventsLeftOut"] == 70
    text = page.decode("utf-8")
    assert "First 20 of" in text and "70 event(s) beyond 50" in text
    assert len(page) < 200_000
    rows = list(csv.DictReader(io.StringIO(sheet.decode("utf-8").lstrip("\ufeff"))))
    assert len(rows) == 50 and max(len(r["userAgent"]) for r in rows) == report.MAX_CELL


def test_garbage_in_the_events_does_not_break_the_report():
    odd = [{"EventName": "X", "CloudTrailEvent": "not json"}, "not an event", {"CloudTrailEvent": json.dumps([1])}]
    page, sheet, facts = _build(documents=[{"events": odd}, {}, None])
    assert facts["events"] == 2 and b"<!DOCTYPE html>" in page


def test_any_shape_of_the_finding_renders():
    """The raw input is whatever started the execution: an AWS Health event's `service` is a name ("IAM"), a Trusted
    Advisor check carries no GuardDuty block, and an attacker-shaped finding may put anything in any field."""
    health = {"source": "aws.health", "detail": {"service": "IAM", "eventTypeCode": "AWS_RISK_CREDENTIALS_EXPOSED"}}
    odd = [health, {"detail": {"service": {"eventFirstSeen": {"x": 1}, "count": "3; DROP"}}},
           {"detail": {"service": {"count": True}}}, {"detail": "text"}, ["a"], None]
    for finding in odd:
        page, _, _ = _build(finding=finding)
        assert b"<!DOCTYPE html>" in page and b"DROP" not in page
        gap = report.after_action(INCIDENT, finding, [], RECORD)[2]
        assert gap["seen"] is None and "published" not in gap["showed"]
