"""CloudTrail Lake gap: moto has no Lake queries (`StartQuery`, `DescribeQuery`, `GetQueryResults`,
`CancelQuery` are not implemented).

Restored for the statements the responder runs on an event data store (responder/trail_query.py `lake_template`,
with its checked, quoted values) on an event data store the local deployment created (`register`): the answer
comes from the CloudTrail events the in-memory AWS recorded in every account and Region
(state_machines/gaps_cloudtrail.py), as an organization event data store holds them, through the same evaluation
as the Athena gap. As the CloudTrail API reference describes: `StartQuery` returns a ``QueryId``; `DescribeQuery`
reports ``QUEUED``/``RUNNING`` then ``FINISHED`` (or ``FAILED`` with ``ErrorMessage``); `GetQueryResults` pages of
at most ``MaxQueryResults`` (1 to 1,000) rows, each row a list of one-entry ``{column: value}`` maps, with
``NextToken``; an unknown event data store is ``EventDataStoreNotFoundException``; `CancelQuery` ``CANCELLED``.
Lake's ``eventTime`` reads ``yyyy-MM-dd HH:mm:ss.SSS``. Any other statement is ``InvalidQueryStatementException``.
"""
from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from contextlib import ExitStack
from typing import Any
from unittest import mock

_lock = threading.Lock()
_stores: set[str] = set()  # event data store ARNs
_queries: dict[str, dict[str, Any]] = {}
_depth = [0]
_LITERAL = "'((?:[^']|'')*)'"


def register(arn: str) -> None:
    with _lock:
        _stores.add(arn)


def queries() -> dict[str, dict[str, Any]]:
    with _lock:
        return dict(_queries)


def _parse(statement: str) -> tuple[str, list[str]] | None:
    """(kind, the literal values in placeholder order) of the responder's statement, or None."""
    from responder.trail_query import PREDICATES, lake_template

    found = re.search(r" FROM ([A-Za-z0-9-]{1,128}) WHERE ", statement or "")
    if not found:
        return None
    for kind in PREDICATES:
        pattern = "^" + re.escape(lake_template(kind, found.group(1))).replace(r"\?", _LITERAL) + "$"
        match = re.match(pattern, statement)
        if match:
            return kind, [v.replace("''", "'") for v in match.groups()]
    return None


def _store_id(arn_or_id: str) -> str | None:
    with _lock:
        for arn in _stores:
            if arn_or_id in (arn, arn.rsplit("/", 1)[-1]):
                return arn.rsplit("/", 1)[-1]
    return None


def install(stack: ExitStack) -> None:
    from moto.cloudtrail.responses import CloudTrailResponse
    from moto.core.exceptions import JsonRESTError

    from responder.trail_query import LAKE_COLUMNS
    from state_machines.gaps_athena import _evaluate

    def start_query(self):
        body = json.loads(self.body or "{}")
        statement = body.get("QueryStatement") or ""
        target = re.search(r" FROM ([A-Za-z0-9-]{1,128}) ", statement)
        if not target or _store_id(target.group(1)) is None:
            raise JsonRESTError("EventDataStoreNotFoundException", "The specified event data store was not found.")
        parsed = _parse(statement)
        if parsed is None:
            raise JsonRESTError("InvalidQueryStatementException", "The query statement is not supported here.")
        kind, values = parsed
        values[-2:] = [v.replace(" ", "T") + "Z" for v in values[-2:]]  # Lake's window, compared as ISO text
        rows = _evaluate(kind, values, "")
        for row in rows:  # Lake's renderings
            if row.get("eventtime"):
                row["eventtime"] = row["eventtime"].replace("T", " ").rstrip("Z") + ".000"
        query_id = str(uuid.uuid4())
        with _lock:
            _queries[query_id] = {"state": "RUNNING", "polls": 0, "rows": rows, "statement": statement}
        return json.dumps({"QueryId": query_id})

    def _query(self):
        body = json.loads(self.body or "{}")
        if body.get("EventDataStore") and _store_id(body["EventDataStore"]) is None:
            raise JsonRESTError("EventDataStoreNotFoundException", "The specified event data store was not found.")
        with _lock:
            query = _queries.get(body.get("QueryId") or "")
        if query is None:
            raise JsonRESTError("QueryIdNotFoundException", "The query ID does not exist.")
        return body, query

    def describe_query(self):
        body, query = _query(self)
        with _lock:
            query["polls"] += 1
            if query["state"] == "RUNNING" and query["polls"] > 1:
                query["state"] = "FINISHED"
        return json.dumps({"QueryId": body["QueryId"], "QueryString": query["statement"],
                           "QueryStatus": query["state"],
                           "QueryStatistics": {"EventsMatched": len(query["rows"]), "EventsScanned": len(query["rows"]),
                                               "BytesScanned": 1024 * len(query["rows"])}})

    def get_query_results(self):
        body, query = _query(self)
        limit = body.get("MaxQueryResults") or 1000
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise JsonRESTError("InvalidMaxResultsException", "MaxQueryResults must be between 1 and 1000.")
        offset = 0
        if body.get("NextToken"):
            try:
                offset = int(json.loads(base64.b64decode(body["NextToken"]))["offset"])
            except (ValueError, KeyError, TypeError):
                raise JsonRESTError("InvalidNextTokenException", "Invalid NextToken.") from None
        labels = [alias for alias, _ in LAKE_COLUMNS]
        page = query["rows"][offset:offset + limit]
        out: dict[str, Any] = {"QueryStatus": query["state"], "QueryResultRows": [
            [{c: r[c]} for c in labels if r.get(c) is not None] for r in page]}
        if offset + limit < len(query["rows"]):
            out["NextToken"] = base64.b64encode(json.dumps({"offset": offset + limit}).encode()).decode()
        return json.dumps(out)

    def cancel_query(self):
        body, query = _query(self)
        with _lock:
            if query["state"] in ("QUEUED", "RUNNING"):
                query["state"] = "CANCELLED"
        return json.dumps({"QueryId": body["QueryId"], "QueryStatus": query["state"]})

    def leave() -> None:
        with _lock:
            _depth[0] -= 1
            if _depth[0] == 0:
                _stores.clear()
                _queries.clear()

    with _lock:
        _depth[0] += 1
    stack.callback(leave)
    for name, fn in (("start_query", start_query), ("describe_query", describe_query),
                     ("get_query_results", get_query_results), ("cancel_query", cancel_query)):
        stack.enter_context(mock.patch.object(CloudTrailResponse, name, fn, create=True))
