"""The field runbook's queries over the organization trail (step 2: "Run an Athena query against your CloudTrail
logs"), as the responder runs them and as the stack saves them ("the queries are pre-saved").

Pure: no AWS call. `stacks/` saves `named_queries()` as ``AWS::Athena::NamedQuery`` resources of the configured
workgroup; the identity task runs `principal_query()` for each principal of an incident through aws/athena.py; the
in-memory AWS (state_machines/gaps_athena.py) answers exactly these texts. One text per principal kind, so the
query an on-call opens in the console is, character for character, the one the responder ran.

**Parameters, never text.** The principal's account, name, key and ARN and the window reach Athena only as
``ExecutionParameters`` for the ``?`` placeholders (Athena, "Use execution parameters": the values are SQL
literals, as in ``EXECUTE ... USING 'usa'``), each one a quoted string literal (`literal`), and only after
`_checked` accepted it against AWS's own character set for that field (IAM names ``[\\w+=,.@-]``, access keys
``[A-Z0-9]``, ARNs, 12-digit accounts, the window's fixed timestamp format). A value outside that set is refused
(`UnsafeValue`), and the capture falls back to CloudTrail event history, whose lookup attribute is a plain API
parameter. The query text itself depends only on the deployment's database, table and partition column names,
which the stack validated at synth (`IDENTIFIER`).

**Rows to events.** `event_from_row` turns one result row into the record LookupEvents returns (``EventId``,
``EventName``, ``EventTime``, ``EventSource``, ``Username``, ``AccessKeyId``, ``ReadOnly``, ``Resources``, and
``CloudTrailEvent``, the CloudTrail record with ``userIdentity``, ``requestParameters``,
``responseElements``, ``awsRegion``...), so whatever reads the principal's events reads them the same way whichever
source found them. ``Resources`` is left empty (the trail's ``resources`` column is an array of structs, not
selected); everything the attacker's plan needs is in the CloudTrail record.

Window: ``eventtime BETWEEN ? AND ?`` over the trail's ISO-8601 text (``2024-05-30T00:00:00Z`` sorts as time),
and, when the table is partitioned by date (`date_partition`, AWS's partition-projection layout for CloudTrail:
``yyyy/MM/dd`` text), the same range on that partition so Athena reads only the window's days.
"""
from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

IDENTIFIER = re.compile(r"^[a-z0-9_]{1,255}$")  # Glue / Athena database, table and column names (lower case)
WORKGROUP = re.compile(r"^[a-zA-Z0-9._-]{1,128}$")  # Athena WorkGroupName
MAX_ROWS = 5000  # per principal and incident: the capture is evidence, not the whole trail (truncated beyond)
PAGE_ROWS = 1000  # GetQueryResults: at most 1,000 rows per page (MaxResults)
_TIME = "%Y-%m-%dT%H:%M:%SZ"
_ACCOUNT = re.compile(r"^\d{12}$")
_NAME = re.compile(r"^[\w+=,.@-]{1,128}$")  # IAM user / role / federated user names (IAM API reference)
_KEY = re.compile(r"^[A-Z0-9]{16,128}$")  # AccessKeyId
_PRINCIPAL_ID = re.compile(r"^[A-Z0-9]{16,128}(:[\w+=,.@-]{1,128})?$")
_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_DAY = re.compile(r"^\d{4}/\d{2}/\d{2}$")

# Result columns: (alias, expression). The aliases are the result's column names (first row of the result).
COLUMNS = (
    ("eventid", "eventid"), ("eventtime", "eventtime"), ("eventname", "eventname"),
    ("eventsource", "eventsource"), ("awsregion", "awsregion"), ("sourceipaddress", "sourceipaddress"),
    ("useragent", "useragent"), ("errorcode", "errorcode"), ("readonly", "readonly"),
    ("recipientaccountid", "recipientaccountid"), ("requestparameters", "requestparameters"),
    ("responseelements", "responseelements"),
    ("identity_type", "useridentity.type"), ("identity_principalid", "useridentity.principalid"),
    ("identity_arn", "useridentity.arn"), ("identity_accountid", "useridentity.accountid"),
    ("identity_accesskeyid", "useridentity.accesskeyid"), ("identity_username", "useridentity.username"),
    ("issuer_arn", "useridentity.sessioncontext.sessionissuer.arn"),
    ("issuer_accountid", "useridentity.sessioncontext.sessionissuer.accountid"),
    ("issuer_username", "useridentity.sessioncontext.sessionissuer.username"),
)

# kind -> (the principal predicate with its `?` placeholders, the parameter names in placeholder order)
PREDICATES: dict[str, tuple[str, tuple[str, ...]]] = {
    "iam_user": ("useridentity.type = 'IAMUser' AND useridentity.accountid = ? AND useridentity.username = ?",
                 ("account", "name")),
    "assumed_role": ("useridentity.type = 'AssumedRole' AND useridentity.sessioncontext.sessionissuer.accountid = ? "
                     "AND useridentity.sessioncontext.sessionissuer.username = ?", ("account", "name")),
    "root": ("useridentity.type = 'Root' AND useridentity.accountid = ?", ("account",)),
    "federated_user": ("useridentity.type = 'FederatedUser' AND useridentity.arn = ?", ("arn",)),
    "access_key": ("useridentity.accesskeyid = ?", ("accessKeyId",)),
    "principal_id": ("useridentity.principalid = ?", ("principalId",)),
}
_CHECKS = {"account": _ACCOUNT, "name": _NAME, "accessKeyId": _KEY, "principalId": _PRINCIPAL_ID,
           "start": _STAMP, "end": _STAMP, "day_start": _DAY, "day_end": _DAY}
NAMED_QUERY_PREFIX = "ir-responder"


class UnsafeValue(ValueError):
    """A value that is not what AWS allows for its field: never put into a query."""


def _checked(field: str, value: Any) -> str:
    text = value if isinstance(value, str) else ""
    if field == "arn":
        ok = re.match(r"^arn:aws[\w-]*:sts::\d{12}:federated-user/[\w+=,.@-]{1,128}$", text)
    else:
        ok = _CHECKS[field].match(text)
    if not ok:
        raise UnsafeValue(f"{field}: {str(value)[:80]!r} is not a valid {field}; not queried")
    return text


def literal(value: str) -> str:
    """A SQL string literal (quotes doubled): the form Athena takes an execution parameter's text value in."""
    return "'" + value.replace("'", "''") + "'"


def kind_of(identity: dict[str, Any]) -> str | None:
    """Which query finds this identity's events (the broadest one that names exactly it), or None."""
    kind, name = identity.get("type"), identity.get("name")
    if kind == "IAMUser" and name:
        return "iam_user"
    if kind == "AssumedRole" and name:
        return "assumed_role"
    if kind == "Root":
        return "root"
    if kind == "FederatedUser" and name:
        return "federated_user"
    if identity.get("accessKeyId"):
        return "access_key"
    if identity.get("principalId"):
        return "principal_id"
    return None


def _table(database: str, table: str) -> str:
    for field, value in (("database", database), ("table", table)):
        if not IDENTIFIER.match(value or ""):
            raise UnsafeValue(f"{field}: {value!r} is not an Athena identifier")
    return f'"{database}"."{table}"'


def _columns(columns: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(alias if alias == expr else f"{expr} AS {alias}" for alias, expr in columns)


def query_text(kind: str, *, database: str, table: str, date_partition: str = "") -> str:
    """The parameterized SQL of one principal kind (what the named query holds)."""
    predicate = PREDICATES[kind][0]
    columns = _columns(COLUMNS)
    where = f"{predicate} AND eventtime BETWEEN ? AND ?"
    if date_partition:
        if not IDENTIFIER.match(date_partition):
            raise UnsafeValue(f"date partition: {date_partition!r} is not an Athena identifier")
        where += f' AND "{date_partition}" BETWEEN ? AND ?'
    return (f"SELECT {columns} FROM {_table(database, table)} WHERE {where} "
            f"ORDER BY eventtime DESC, eventid LIMIT {MAX_ROWS + 1}")


def principal_query(identity: dict[str, Any], incident: dict[str, Any], span: dict[str, str], *, database: str,
                    table: str, date_partition: str = "") -> dict[str, Any] | None:
    """``{"kind", "name", "query", "parameters"}`` for this identity and window (parameters as SQL literals, in
    placeholder order), or None when no query names it. Raises UnsafeValue for a value AWS would never issue."""
    kind = kind_of(identity)
    if kind is None:
        return None
    account = incident.get("accountId", "")
    name = identity.get("name") or ""
    partition = incident.get("partition") or "aws"
    values = {"account": account, "name": name, "accessKeyId": identity.get("accessKeyId"),
              "principalId": identity.get("principalId"),
              "arn": f"arn:{partition}:sts::{account}:federated-user/{name}"}
    fields = list(PREDICATES[kind][1]) + ["start", "end"]
    values.update(start=span["start"], end=span["end"])
    if date_partition:
        values.update(day_start=_day(span["start"]), day_end=_day(span["end"]))
        fields += ["day_start", "day_end"]
    parameters = [literal(_checked(f, values[f])) for f in fields]
    return {"kind": kind, "name": named_query_name(kind),
            "query": query_text(kind, database=database, table=table, date_partition=date_partition),
            "parameters": parameters}


# CloudTrail Lake: the same columns; eventTime is a timestamp, readOnly a boolean, requestParameters and
# responseElements maps (as JSON text here, Trino's CAST ... AS JSON: Lake supports all Trino functions).
LAKE_COLUMNS = tuple(
    (alias, {"eventtime": "CAST(eventtime AS varchar)", "readonly": "CAST(readonly AS varchar)",
             "requestparameters": "json_format(CAST(requestparameters AS JSON))",
             "responseelements": "json_format(CAST(responseelements AS JSON))"}.get(alias, expr))
    for alias, expr in COLUMNS)
EVENT_DATA_STORE = re.compile(r"^arn:aws[\w-]*:cloudtrail:[a-z0-9-]+:\d{12}:eventdatastore/([A-Za-z0-9-]{1,128})$")


def lake_template(kind: str, event_data_store_id: str) -> str:
    """The Lake statement of one principal kind with `?` where each literal goes (Lake's StartQuery takes no
    parameters for a statement: `lake_query` puts the checked, quoted values in)."""
    if not re.match(r"^[A-Za-z0-9-]{1,128}$", event_data_store_id or ""):
        raise UnsafeValue(f"event data store: {event_data_store_id!r} is not an event data store id")
    return (f"SELECT {_columns(LAKE_COLUMNS)} FROM {event_data_store_id} WHERE {PREDICATES[kind][0]} "
            f"AND eventtime BETWEEN ? AND ? ORDER BY eventtime DESC, eventid LIMIT {MAX_ROWS + 1}")


def lake_query(identity: dict[str, Any], incident: dict[str, Any], span: dict[str, str], *,
               event_data_store: str) -> dict[str, Any] | None:
    """``{"kind", "name": None, "query", "parameters": []}`` for CloudTrail Lake, or None. Strict validation
    instead of parameters: every value passes `_checked` (what AWS itself issues) and is quoted; the window
    is Lake's ``yyyy-MM-dd HH:mm:ss``. Raises UnsafeValue otherwise."""
    kind = kind_of(identity)
    if kind is None:
        return None
    found = EVENT_DATA_STORE.match(event_data_store or "")
    if not found:
        raise UnsafeValue(f"event data store: {event_data_store!r} is not an event data store ARN")
    athena = principal_query(identity, incident, span, database="lake", table="lake")
    literals = athena["parameters"]
    literals[-2:] = [literal(_checked("start", v).replace("T", " ").rstrip("Z")) for v in (span["start"], span["end"])]
    text = lake_template(kind, found.group(1))
    for value in literals:
        text = text.replace("?", value, 1) if "?" not in value else _fail(value)
    return {"kind": kind, "name": None, "query": text, "parameters": []}


def _fail(value: str) -> str:
    raise UnsafeValue(f"{value[:80]!r}: a placeholder inside a value")


def _day(stamp: str) -> str:
    return datetime.strptime(_checked("start", stamp), _TIME).strftime("%Y/%m/%d")


def named_query_name(kind: str) -> str:
    return f"{NAMED_QUERY_PREFIX}-scope-{kind.replace('_', '-')}"


def named_queries(*, database: str, table: str, date_partition: str = "") -> list[dict[str, str]]:
    """What the stack saves: one scope query per principal kind (run by the responder, with `?` parameters the
    console asks for), and the runbook's two detection queries (section 1: ConsoleLogin by source, CreateAccessKey on
    principals that already had keys; section 6: the daily ConsoleLogin query)."""
    source = _table(database, table)
    found = []
    params = {"iam_user": "account id, user name", "assumed_role": "account id, role name", "root": "account id",
              "federated_user": "federated user ARN", "access_key": "access key id", "principal_id": "principal id"}
    for kind in PREDICATES:
        window = "start, end (yyyy-MM-ddTHH:mm:ssZ)" + (", first day, last day (yyyy/MM/dd)" if date_partition else "")
        found.append({"name": named_query_name(kind),
                      "description": f"Runbook step 2, scope a compromised identity ({kind}): parameters "
                                     f"{params[kind]}, {window}",
                      "query": query_text(kind, database=database, table=table, date_partition=date_partition)})
    found.append({"name": f"{NAMED_QUERY_PREFIX}-console-logins",
                  "description": "Runbook sections 1 and 6: ConsoleLogin by account, principal and source address "
                                 "since a start time (parameter: start, yyyy-MM-ddTHH:mm:ssZ)",
                  "query": "SELECT recipientaccountid, useridentity.arn AS identity_arn, sourceipaddress, "
                           "count(*) AS logins, min(eventtime) AS first_seen, max(eventtime) AS last_seen "
                           f"FROM {source} WHERE eventname = 'ConsoleLogin' AND eventtime >= ? "
                           "GROUP BY 1, 2, 3 ORDER BY first_seen DESC"})
    found.append({"name": f"{NAMED_QUERY_PREFIX}-create-access-key",
                  "description": "Runbook section 1: CreateAccessKey calls since a start time, by caller and the "
                                 "user the key was made for (parameter: start, yyyy-MM-ddTHH:mm:ssZ)",
                  "query": "SELECT eventtime, recipientaccountid, useridentity.arn AS identity_arn, "
                           "json_extract_scalar(requestparameters, '$.userName') AS for_user, sourceipaddress, "
                           f"eventid FROM {source} WHERE eventname = 'CreateAccessKey' AND errorcode IS NULL "
                           "AND eventtime >= ? ORDER BY eventtime DESC"})
    return found


# -- rows -> LookupEvents records --------------------------------------------------------------------------
def _json(text: Any) -> Any:
    if not isinstance(text, str) or not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def event_from_row(row: dict[str, Any]) -> dict[str, Any]:
    """One result row (column alias -> text or None) as the LookupEvents event the scope capture stores
    (aws/cloudtrail.py: ``EventTime`` ISO-8601 text, ``CloudTrailEvent`` the parsed record): see the module
    docstring."""
    kind = row.get("identity_type")
    identity = {k: v for k, v in {
        "type": kind, "principalId": row.get("identity_principalid"), "arn": row.get("identity_arn"),
        "accountId": row.get("identity_accountid"), "accessKeyId": row.get("identity_accesskeyid"),
        "userName": row.get("identity_username")}.items() if v not in (None, "")}
    if row.get("issuer_arn"):
        identity["sessionContext"] = {"sessionIssuer": {k: v for k, v in {
            "type": "Role", "arn": row.get("issuer_arn"), "accountId": row.get("issuer_accountid"),
            "userName": row.get("issuer_username")}.items() if v not in (None, "")}}
    arn = row.get("identity_arn") or ""
    when = row.get("eventtime")
    if isinstance(when, str) and " " in when:  # CloudTrail Lake: 2024-05-30 10:00:00.000
        row = {**row, "eventtime": when.replace(" ", "T")[:19] + "Z"}
    username = {"IAMUser": row.get("identity_username"), "Root": "root",
                "AssumedRole": arn.rsplit("/", 1)[-1] if "/" in arn else None,
                "FederatedUser": arn.rsplit("/", 1)[-1] if "/" in arn else None}.get(kind or "")
    readonly = str(row.get("readonly") or "").lower()
    record = {k: v for k, v in {
        "eventID": row.get("eventid"), "eventTime": row.get("eventtime"), "eventName": row.get("eventname"),
        "eventSource": row.get("eventsource"), "awsRegion": row.get("awsregion"),
        "sourceIPAddress": row.get("sourceipaddress"), "userAgent": row.get("useragent"),
        "errorCode": row.get("errorcode"), "readOnly": readonly == "true" if readonly else None,
        "recipientAccountId": row.get("recipientaccountid"), "userIdentity": identity,
        "requestParameters": _json(row.get("requestparameters")),
        "responseElements": _json(row.get("responseelements"))}.items() if v is not None}
    event = {"EventId": row.get("eventid"), "EventName": row.get("eventname"), "EventTime": row.get("eventtime"),
             "EventSource": row.get("eventsource"), "Username": username or row.get("identity_principalid"),
             "Resources": [], "CloudTrailEvent": record}
    if row.get("identity_accesskeyid"):
        event["AccessKeyId"] = row["identity_accesskeyid"]
    if readonly:
        event["ReadOnly"] = readonly
    return {k: v for k, v in event.items() if v is not None}
