"""CloudTrail adapter: recent management events of one principal (`LookupEvents`, CloudTrail event history).

LookupEvents takes exactly one lookup attribute, returns at most 50 events per page (newest first) and is limited
to two requests per second per account and Region: callers bound the page count and the time they spend.
"""
from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any, Callable

MEMBER_ACTIONS = ("cloudtrail:LookupEvents",)
PAGE_SIZE = 50


def _event(raw: dict[str, Any]) -> dict[str, Any]:
    """One LookupEvents event as JSON-ready data; the embedded CloudTrail record is parsed."""
    event = {k: v for k, v in raw.items() if k != "CloudTrailEvent"}
    when = event.get("EventTime")
    if isinstance(when, datetime):
        event["EventTime"] = when.isoformat().replace("+00:00", "Z")
    detail = raw.get("CloudTrailEvent")
    if isinstance(detail, str):
        try:
            event["CloudTrailEvent"] = json.loads(detail)
        except ValueError:
            event["CloudTrailEvent"] = detail
    return event


class CloudTrail:
    def __init__(self, client: Any, *, monotonic: Callable[[], float] = time.monotonic):
        self._c = client
        self._monotonic = monotonic

    def lookup(self, attribute: str, value: str, *, start: datetime, end: datetime, max_pages: int,
               deadline: float | None = None) -> dict[str, Any]:
        """Events where `attribute` == `value` in [start, end], newest first, at most `max_pages` pages.
        Stops early (truncated) when the monotonic `deadline` has passed. Errors propagate (ClientError)."""
        params: dict[str, Any] = {
            "LookupAttributes": [{"AttributeKey": attribute, "AttributeValue": value}],
            "StartTime": start, "EndTime": end, "MaxResults": PAGE_SIZE,
        }
        events: list[dict[str, Any]] = []
        pages, truncated = 0, False
        while True:
            if pages >= max_pages or (deadline is not None and pages and self._monotonic() > deadline):
                truncated = True
                break
            page = self._c.lookup_events(**params)
            pages += 1
            events.extend(_event(e) for e in page.get("Events", []))
            token = page.get("NextToken")
            if not token:
                break
            params["NextToken"] = token
        return {"events": events, "pages": pages, "truncated": truncated}
