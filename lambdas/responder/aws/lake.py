"""CloudTrail Lake adapter: run the scope query on the organization's event data store (security account, the
function's role) - the alternative to the Athena table (aws/athena.py), with the same interface.

The calls (CloudTrail API reference): `StartQuery` with the statement (Lake takes ``QueryParameters`` only for its
dashboards' query aliases, so the values are literals in the text: responder/trail_query.py admits only values AWS
itself issues and quotes them); `DescribeQuery` until ``FINISHED`` / ``FAILED`` / ``CANCELLED`` / ``TIMED_OUT``
within the caller's deadline, then `CancelQuery`; `GetQueryResults`, at most 1,000 rows per page
(``MaxQueryResults``), each row a list of one-entry ``{column: value}`` maps. CloudTrail Lake is closed to new
customers since 2026-05-31 (existing ones keep it): the Athena table is the path for a new deployment.
"""
from __future__ import annotations

import time
from typing import Any, Callable

from responder.aws.query_engine import pages, poll

LAKE_ACTIONS = ("cloudtrail:CancelQuery", "cloudtrail:DescribeQuery", "cloudtrail:GetQueryResults",
                "cloudtrail:StartQuery")
PAGE_ROWS = 1000
_STATES = {"FINISHED": "SUCCEEDED", "FAILED": "FAILED", "CANCELLED": "CANCELLED", "TIMED_OUT": "FAILED"}


class Lake:
    def __init__(self, client: Any, *, event_data_store: str, monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self._c = client
        self.event_data_store = event_data_store
        self._monotonic = monotonic
        self._sleep = sleep

    def start(self, query: str, parameters: list[str], *, token: str) -> str:  # noqa: ARG002 - Lake has neither
        """Start the query; its id. `parameters` must be empty (Lake takes literals); errors propagate."""
        if parameters:
            raise ValueError("CloudTrail Lake takes no execution parameters for a statement")
        return self._c.start_query(QueryStatement=query)["QueryId"]

    def wait(self, query_id: str, *, deadline: float, interval: float = 1.0) -> dict[str, Any]:
        """Poll until the query ends or `deadline` passes (then it is cancelled). Returns ``{"state" (Athena's
        names: SUCCEEDED, FAILED, CANCELLED, TIMED_OUT when we gave up), "reason", "scannedBytes", "polls"}``."""
        answer, polls = poll(lambda: self._c.describe_query(EventDataStore=self.event_data_store, QueryId=query_id),
                             lambda d: d.get("QueryStatus", ""), tuple(_STATES), deadline=deadline,
                             monotonic=self._monotonic, sleep=self._sleep, interval=interval)
        status, stats = answer.get("QueryStatus", ""), answer.get("QueryStatistics") or {}
        found = {"state": _STATES.get(status, "TIMED_OUT"), "reason": (answer.get("ErrorMessage") or "")[:400]
                 or None, "scannedBytes": stats.get("BytesScanned"), "engineMillis": stats.get("ExecutionTimeInMillis"),
                 "polls": polls}
        if status == "TIMED_OUT":
            found["reason"] = found["reason"] or "the query timed out in CloudTrail Lake"
        if status not in _STATES:
            self._c.cancel_query(EventDataStore=self.event_data_store, QueryId=query_id)
        return found

    def rows(self, query_id: str, *, max_rows: int, deadline: float) -> dict[str, Any]:
        """The result rows as dicts (column -> text), at most `max_rows`: ``{"rows", "pages", "truncated"}``."""
        return pages(lambda params: self._c.get_query_results(**params),
                     lambda page, _: [{k: v for cell in row for k, v in cell.items()}
                                      for row in page.get("QueryResultRows") or []],
                     {"EventDataStore": self.event_data_store, "QueryId": query_id, "MaxQueryResults": PAGE_ROWS},
                     max_rows=max_rows, deadline=deadline, monotonic=self._monotonic)
