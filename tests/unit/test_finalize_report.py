"""Finalize's incident report (responder.finalize.write_report) against an in-process bucket: bounded by its byte
budget whatever the event count (and saying what was cut), write-once, read back, captures checked."""
from __future__ import annotations

import csv
import io
import json

import pytest

from responder import finalize
from responder import report


class Bucket:
    bucket = "evidence"

    def __init__(self, tamper: bool = False):
        self.objects: dict[str, bytes] = {}
        self.puts = 0
        self.tamper = tamper

    def get_bytes(self, key, version_id=None):
        body = self.objects[key]
        return body + b"x" if self.tamper and "report-" in key else body

    def put_json_once(self, key, body, content_type="application/json"):
        self.puts += 1
        if key in self.objects:
            return None
        self.objects[key] = body
        return {"uri": f"s3://evidence/{key}", "sha256": finalize.report_digest(body), "bytes": len(body)}


def events(n: int, agent: str = "aws-cli") -> list[dict]:
    return [{"EventId": f"e-{i}", "EventName": "GetObject", "EventTime": "2026-01-01T00:00:00Z",
             "CloudTrailEvent": {"eventName": "GetObject", "eventTime": "2026-01-01T00:00:00Z", "userAgent": agent,
                                 "requestParameters": {"key": "k" * 500}, "eventID": f"e-{i}"}} for i in range(n)]


def stored(bucket: Bucket, docs: list[dict]) -> dict:
    item = {"scope": []}
    for i, doc in enumerate(docs):
        body = json.dumps(doc).encode()
        key = f"incidents/i/cloudtrail/p{i}.json"
        bucket.objects[key] = body
        item["scope"].append({"key": key, "sha256": finalize.report_digest(body), "status": "captured"})
    return item


def write(bucket: Bucket, item: dict) -> dict:
    return finalize.write_report(bucket, incident={"incidentId": "i"}, finding={}, summary={"outcome": "contained"},
                                 item=item, journal=[], attempt=1, when="2026-01-01T01:00:00Z")


def test_a_huge_event_count_stays_in_the_budget_and_the_page_says_what_was_cut(monkeypatch):
    monkeypatch.setattr(finalize, "MAX_REPORT_BYTES", 3_000_000)
    monkeypatch.setattr(finalize, "MAX_PAGE_BYTES", 1_000_000)
    bucket = Bucket()
    out = write(bucket, stored(bucket, [{"events": events(report.MAX_EVENTS + 10, agent="=cmd|' /C calc'!A0")}]))
    page, sheet = bucket.objects[out["html"]["key"]], bucket.objects[out["csv"]["key"]]
    assert len(page) + len(sheet) <= finalize.MAX_REPORT_BYTES
    assert out["cutForBudget"] > 0 and out["eventsLeftOut"] == out["cutForBudget"] + 10
    rows = list(csv.DictReader(io.StringIO(sheet.decode("utf-8-sig"))))
    assert len(rows) == out["events"] and all(r["userAgent"].startswith("'=") for r in rows)
    assert f"{out['eventsLeftOut']} event(s) beyond" in page.decode()


def test_a_second_run_of_the_attempt_writes_no_second_copy():
    bucket = Bucket()
    item = stored(bucket, [{"events": events(3)}])
    first = write(bucket, item)
    body = bucket.objects[first["html"]["key"]]
    again = write(bucket, dict(item, report=first))  # the record holds the first copy
    assert again["alreadyWritten"] and again["html"]["sha256"] == first["html"]["sha256"]
    lost = write(bucket, item)  # the record lost it: the names are taken, nothing is overwritten
    assert lost["html"]["written"] is False and lost["html"]["reason"] == "exists (written once)"
    assert lost["html"]["sha256"] == first["html"]["sha256"]  # the copy that stands, read back
    assert bucket.objects[first["html"]["key"]] == body


def test_a_report_that_does_not_read_back_is_an_error_and_a_tampered_capture_is_not_used():
    bucket = Bucket(tamper=True)
    with pytest.raises(finalize.ReportMismatch):
        write(bucket, stored(bucket, [{"events": events(1)}]))
    bucket = Bucket()
    item = stored(bucket, [{"events": events(2)}])
    bucket.objects[item["scope"][0]["key"]] += b" "
    out = write(bucket, item)
    assert out["events"] == 0 and out["capturesUnread"][0]["why"] == "SHA-256 does not match the record"
