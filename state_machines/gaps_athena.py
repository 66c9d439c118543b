"""Athena gap: moto stores query executions but runs nothing (every query "succeeds" with canned or empty rows),
ignores ``ExecutionParameters`` and ``GetQueryResults`` pagination.

Restored for the queries the responder saves and runs over the organization trail (responder/trail_query.py,
exactly those texts, for a table that exists in the Glue Data Catalog of the account and Region): the in-memory
engine answers from the CloudTrail events the in-memory AWS recorded in every account and Region
(state_machines/gaps_cloudtrail.py), as an organization trail holds them. As the Athena documentation describes:

* "Use execution parameters": each ``?`` takes one value, in order, and a value is a SQL literal (``'usa'`` in
  ``EXECUTE ... USING``); a string literal is quoted, a quote inside doubled. Anything else (a bare word, two
  literals, an unbalanced quote) fails the query (``FAILED``, as Athena fails a query it cannot parse), and so does
  a parameter count that differs from the placeholders;
* ``StartQueryExecution`` on a table the catalog does not have (the local deployment registers its trail table:
  moto's Glue needs pyparsing, which the local runtime does not install): the query ``FAILED`` ("Table ... does not exist");
* ``GetQueryExecution``: ``QUEUED`` / ``RUNNING`` first, then ``SUCCEEDED`` (a test may hold a query running,
  `hold`, or fail it, `fail_next`); ``StopQueryExecution``: ``CANCELLED``;
* ``GetQueryResults``: ``MaxResults`` 1 to 1,000, ``NextToken``; the first row of the first page is the column
  labels; only for a ``SUCCEEDED`` query (``InvalidRequestException`` otherwise).

Other queries keep moto's behaviour.
"""
from __future__ import annotations

import base64
import json
import re
import threading
from contextlib import ExitStack
from typing import Any
from unittest import mock

_lock = threading.Lock()
_runs: dict[str, dict[str, Any]] = {}  # execution id -> {"rows", "labels", "state", "reason", "polls"}
_hold = [0]  # polls each next query stays RUNNING (test switch)
_depth = [0]
_fail = [""]  # StateChangeReason of the next query that fails (test switch)
_tables: set[tuple[str, str, str, str]] = set()  # (account, region, database, table): the trail tables
_FROM = re.compile(r'FROM "([a-z0-9_]+)"\."([a-z0-9_]+)"')


def register_table(account: str, region: str, database: str, table: str) -> None:
    """The Glue Data Catalog's trail table (local_stacks.trail_stack): queries on any other table fail."""
    with _lock:
        _tables.add((account, region, database, table))


def hold(polls: int) -> None:
    """Test switch: the next trail queries stay RUNNING for `polls` GetQueryExecution calls."""
    _hold[0] = polls


def fail_next(reason: str) -> None:
    """Test switch: the next trail query FAILS with this StateChangeReason."""
    _fail[0] = reason


def runs() -> dict[str, dict[str, Any]]:
    with _lock:
        return dict(_runs)


def _literal(text: Any) -> str | None:
    """The value of one SQL string literal (``'o''brien'`` -> ``o'brien``), or None if `text` is not exactly one."""
    if not isinstance(text, str) or len(text) < 2 or text[0] != "'" or text[-1] != "'":
        return None
    body = text[1:-1]
    if "'" in body.replace("''", ""):
        return None
    return body.replace("''", "'")


def _kind(query: str, account: str, region: str) -> tuple[str | None, str | None, str]:
    """(kind of the responder's query or None, failure reason or None, the date partition column)."""
    from responder.trail_query import PREDICATES, query_text

    match = _FROM.search(query or "")
    if not match:
        return None, None, ""
    database, table = match.groups()
    partition = ""
    found = re.search(r'AND "([a-z0-9_]+)" BETWEEN \? AND \?', query)
    if found:
        partition = found.group(1)
    kind = next((k for k in PREDICATES if query_text(k, database=database, table=table,
                                                     date_partition=partition) == query), None)
    if kind is None:
        return None, None, ""
    with _lock:
        known = (account, region, database, table) in _tables
    if not known:
        return kind, f"TABLE_NOT_FOUND: Table awsdatacatalog.{database}.{table} does not exist", partition
    return kind, None, partition


def _evaluate(kind: str, values: list[str], partition: str) -> list[dict[str, Any]]:
    from responder.trail_query import COLUMNS, MAX_ROWS, PREDICATES
    from state_machines import gaps_cloudtrail

    names = list(PREDICATES[kind][1]) + ["start", "end"] + (["day_start", "day_end"] if partition else [])
    given = dict(zip(names, values))
    rows = []
    for event in gaps_cloudtrail.events():
        record = event["record"]
        who = record.get("userIdentity") or {}
        issuer = (who.get("sessionContext") or {}).get("sessionIssuer") or {}
        ok = {
            "iam_user": lambda: who.get("type") == "IAMUser" and who.get("accountId") == given["account"]
            and who.get("userName") == given["name"],
            "assumed_role": lambda: who.get("type") == "AssumedRole" and issuer.get("accountId") == given["account"]
            and issuer.get("userName") == given["name"],
            "root": lambda: who.get("type") == "Root" and who.get("accountId") == given["account"],
            "federated_user": lambda: who.get("type") == "FederatedUser" and who.get("arn") == given["arn"],
            "access_key": lambda: who.get("accessKeyId") == given["accessKeyId"],
            "principal_id": lambda: who.get("principalId") == given["principalId"],
        }[kind]()
        stamp = record.get("eventTime") or ""
        if not ok or not given["start"] <= stamp <= given["end"]:
            continue
        if partition and not given["day_start"] <= stamp[:10].replace("-", "/") <= given["day_end"]:
            continue
        flat = {"useridentity": who, "issuer": issuer}
        row = {}
        for alias, expr in COLUMNS:
            parts = expr.split(".")
            if parts[0] != "useridentity":
                value = record.get({"eventid": "eventID", "eventtime": "eventTime", "eventname": "eventName",
                                    "eventsource": "eventSource", "awsregion": "awsRegion",
                                    "sourceipaddress": "sourceIPAddress", "useragent": "userAgent",
                                    "errorcode": "errorCode", "readonly": "readOnly",
                                    "recipientaccountid": "recipientAccountId",
                                    "requestparameters": "requestParameters",
                                    "responseelements": "responseElements"}[parts[0]])
                if parts[0] in ("requestparameters", "responseelements") and value is not None:
                    value = json.dumps(value)  # the trail table holds them as JSON text
                if parts[0] == "readonly" and value is not None:
                    value = str(value).lower()
            else:
                source = flat["issuer"] if parts[1:3] == ["sessioncontext", "sessionissuer"] else flat["useridentity"]
                field = parts[-1]
                value = next((v for k, v in source.items() if k.lower() == field), None)
            row[alias] = None if value is None else str(value)
        rows.append(row)
    rows.sort(key=lambda r: r["eventid"] or "")  # ORDER BY eventtime DESC, eventid (a stable sort: ties by id)
    rows.sort(key=lambda r: r["eventtime"] or "", reverse=True)
    return rows[:MAX_ROWS + 1]


def install(stack: ExitStack) -> None:
    from moto.athena.responses import AthenaResponse
    from moto.core.exceptions import JsonRESTError

    from responder.trail_query import COLUMNS

    start_original = AthenaResponse.start_query_execution
    get_original = AthenaResponse.get_query_execution
    results_original = AthenaResponse.get_query_results
    stop_original = AthenaResponse.stop_query_execution

    def start_query_execution(self):
        response = start_original(self)
        if isinstance(response, tuple):
            return response
        execution_id = json.loads(response)["QueryExecutionId"]
        query = self._get_param("QueryString") or ""
        kind, reason, partition = _kind(query, self.current_account, self.region)
        if kind is None:
            return response
        values = [_literal(v) for v in self._get_param("ExecutionParameters") or []]
        if reason is None and (query.count("?") != len(values) or None in values):
            reason = ("INVALID_FUNCTION_ARGUMENT: execution parameters must be one SQL literal per ? placeholder "
                      f"({query.count('?')} placeholders, {len(values)} parameters)")
        with _lock:
            if reason is None and _fail[0]:
                reason, _fail[0] = _fail[0], ""
            run = {"state": "FAILED" if reason else "RUNNING", "reason": reason, "polls": 0, "hold": _hold[0],
                   "labels": [alias for alias, _ in COLUMNS], "rows": [] if reason else _evaluate(kind, values,
                                                                                                  partition)}
            _runs[execution_id] = run
        return response

    def get_query_execution(self):
        response = get_original(self)
        execution_id = self._get_param("QueryExecutionId")
        with _lock:
            run = _runs.get(execution_id)
            if run is None:
                return response
            run["polls"] += 1
            if run["state"] == "RUNNING" and run["polls"] > max(1, run["hold"]):
                run["state"] = "SUCCEEDED"
            body = json.loads(response)
            status = body["QueryExecution"]["Status"]
            status["State"] = run["state"]
            if run["reason"]:
                status["StateChangeReason"] = run["reason"]
            body["QueryExecution"]["Statistics"]["DataScannedInBytes"] = 1024 * len(run["rows"])
        return json.dumps(body)

    def get_query_results(self):
        execution_id = self._get_param("QueryExecutionId")
        with _lock:
            run = _runs.get(execution_id)
        if run is None:
            return results_original(self)
        if run["state"] != "SUCCEEDED":
            raise JsonRESTError("InvalidRequestException", f"Query has not yet finished. Current state: {run['state']}")
        limit = self._get_param("MaxResults") or 1000
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise JsonRESTError("InvalidRequestException", "MaxResults must be between 1 and 1000")
        offset = 0
        if self._get_param("NextToken"):
            try:
                token = json.loads(base64.b64decode(self._get_param("NextToken")))
                offset = int(token["offset"]) if token["id"] == execution_id else -1
            except (ValueError, KeyError, TypeError):
                offset = -1
            if offset < 0:
                raise JsonRESTError("InvalidRequestException", "Invalid NextToken")
        labels = run["labels"]
        table = [dict(zip(labels, labels))] + run["rows"]  # the first row of a SELECT's result: the labels
        page = table[offset:offset + limit]
        out: dict[str, Any] = {"UpdateCount": 0, "ResultSet": {
            "Rows": [{"Data": [{"VarCharValue": r[c]} if r.get(c) is not None else {} for c in labels]} for r in page],
            "ResultSetMetadata": {"ColumnInfo": [{"CatalogName": "hive", "SchemaName": "", "TableName": "",
                                                  "Name": c, "Label": c, "Type": "varchar", "Precision": 2147483647,
                                                  "Scale": 0, "Nullable": "UNKNOWN", "CaseSensitive": True}
                                                 for c in labels]}}}
        if offset + limit < len(table):
            out["NextToken"] = base64.b64encode(json.dumps({"offset": offset + limit, "id": execution_id}).encode()
                                                ).decode()
        return json.dumps(out)

    def stop_query_execution(self):
        response = stop_original(self)
        with _lock:
            run = _runs.get(self._get_param("QueryExecutionId"))
            if run is not None and run["state"] in ("QUEUED", "RUNNING"):
                run["state"] = "CANCELLED"
        return response

    def leave() -> None:  # nested in-memory AWS contexts share one catalog, like moto's own state
        with _lock:
            _depth[0] -= 1
            if _depth[0] == 0:
                _runs.clear()
                _tables.clear()
                _hold[0], _fail[0] = 0, ""

    with _lock:
        _depth[0] += 1
    stack.callback(leave)
    for name, fn in (("start_query_execution", start_query_execution), ("get_query_execution", get_query_execution),
                     ("get_query_results", get_query_results), ("stop_query_execution", stop_query_execution)):
        stack.enter_context(mock.patch.object(AthenaResponse, name, fn))
