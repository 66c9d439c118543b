"""Athena adapter: run the scope query over the organization trail's table (security account, the function's role).

The calls and their limits (Athena API reference and "Service Quotas"):

* `StartQueryExecution` with the workgroup (its output location and encryption apply; with "override client-side
  settings" the workgroup's win anyway), the database as the query's context, the principal's values only as
  ``ExecutionParameters``, and a ``ClientRequestToken`` derived from incident, principal and window: a retried task
  gets the query it already started instead of a second one (idempotent). Quota: 20 calls per second per account
  and Region (API call quotas); every running or queued DML query counts against "Active DML queries" (25 in many
  Regions, more in some): one over is ``TooManyRequestsException``, recorded, and the capture falls back.
* `GetQueryExecution` until ``SUCCEEDED`` / ``FAILED`` / ``CANCELLED``, within the caller's deadline (100 calls per
  second); a query still ``QUEUED`` or ``RUNNING`` at the deadline is stopped (`StopQueryExecution`: it would keep
  scanning, and billing, for up to the workgroup's DML timeout of 30 minutes).
* `GetQueryResults`, at most 1,000 rows per page (``MaxResults``); the first row of the first page of a SELECT is the
  column labels. Read until ``max_rows`` (then ``truncated``) or the deadline.

The trail itself is read by Athena with the caller's credentials: Glue's table definition (``glue:GetDatabase``,
``GetTable``, ``GetPartitions``) and the trail bucket's objects, and the results are written to the workgroup's
output location; `ENGINE_ACTIONS` lists those grants, stacks/policies.py scopes each to the configured resources.
"""
from __future__ import annotations

import time
from typing import Any, Callable

from responder.aws.query_engine import pages, poll

# Called by this adapter (security account), granted only when the deployment names a trail table.
TRAIL_ACTIONS = ("athena:GetQueryExecution", "athena:GetQueryResults", "athena:StartQueryExecution",
                 "athena:StopQueryExecution")
# Used by Athena on the caller's behalf while the query runs (Athena User Guide, "Access to Amazon S3" and
# "Fine-grained access to databases and tables in the AWS Glue Data Catalog").
ENGINE_GLUE_ACTIONS = ("glue:GetDatabase", "glue:GetPartitions", "glue:GetTable")
ENGINE_TRAIL_READ_ACTIONS = ("s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket")
ENGINE_OUTPUT_ACTIONS = ("s3:AbortMultipartUpload", "s3:GetBucketLocation", "s3:GetObject", "s3:ListBucket",
                         "s3:ListBucketMultipartUploads", "s3:ListMultipartUploadParts", "s3:PutObject")
PAGE_ROWS = 1000
DONE = ("SUCCEEDED", "FAILED", "CANCELLED")


class Athena:
    def __init__(self, client: Any, *, workgroup: str, database: str,
                 monotonic: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self._c = client
        self.workgroup = workgroup
        self.database = database
        self._monotonic = monotonic
        self._sleep = sleep

    def start(self, query: str, parameters: list[str], *, token: str) -> str:
        """Start the query; its execution id. Errors propagate (ClientError)."""
        return self._c.start_query_execution(
            QueryString=query, ClientRequestToken=token, WorkGroup=self.workgroup,
            QueryExecutionContext={"Catalog": "AwsDataCatalog", "Database": self.database},
            ExecutionParameters=list(parameters))["QueryExecutionId"]

    def wait(self, execution_id: str, *, deadline: float, interval: float = 1.0) -> dict[str, Any]:
        """Poll until the query ends or `deadline` (monotonic) passes; then it is stopped. Returns
        ``{"state", "reason", "scannedBytes", "engineMillis", "polls"}``."""
        answer, polls = poll(lambda: self._c.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"],
                             lambda e: (e.get("Status") or {}).get("State", ""), DONE, deadline=deadline,
                             monotonic=self._monotonic, sleep=self._sleep, interval=interval)
        status, stats = answer.get("Status") or {}, answer.get("Statistics") or {}
        state = status.get("State", "")
        found = {"state": state, "reason": (status.get("StateChangeReason") or "")[:400] or None,
                 "scannedBytes": stats.get("DataScannedInBytes"), "engineMillis": stats.get("EngineExecutionTimeInMillis"),
                 "polls": polls}
        if state not in DONE:
            found["state"] = "TIMED_OUT"
            self._c.stop_query_execution(QueryExecutionId=execution_id)
        return found

    def rows(self, execution_id: str, *, max_rows: int, deadline: float) -> dict[str, Any]:
        """The result rows as dicts (column label -> text, None for NULL), at most `max_rows`. Returns
        ``{"rows", "pages", "truncated"}``."""
        def rows_of(page: dict[str, Any], number: int) -> list[dict[str, Any]]:
            result = page.get("ResultSet") or {}
            labels = [c.get("Label") or c.get("Name") for c in
                      (result.get("ResultSetMetadata") or {}).get("ColumnInfo") or []]
            data = (result.get("Rows") or [])[1 if number == 1 else 0:]  # first row of the first page: the labels
            return [dict(zip(labels, [cell.get("VarCharValue") for cell in row.get("Data") or []])) for row in data]

        return pages(lambda params: self._c.get_query_results(**params), rows_of,
                     {"QueryExecutionId": execution_id, "MaxResults": PAGE_ROWS}, max_rows=max_rows,
                     deadline=deadline, monotonic=self._monotonic)
