"""What every task does around its domain function: record its journal in the incident record as it happens (also
when the attempt fails and Step Functions retries the task), and turn its result into the short summary the state
carries (responder.shapes). See docs/ARCHITECTURE.md ("Payload bound").
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

from responder import records, shapes
from responder.errors import TransientAwsError
from responder.evidence_retention import TAG_INCIDENT, TAG_QUARANTINE
from responder.journal import Journal


class TaskJournal:
    """The journals of one task invocation for one subject (an instance, or the incident's identities), recorded in
    the incident table that `table()` makes (the handler's factory: made on first use)."""

    def __init__(self, incident: dict[str, Any], *, task: str, table: Callable[[], Any], subject: str | None = None):
        self.incident = incident
        self.task = task
        self.subject = subject
        self.table = table
        self.journals: list[Journal] = []

    def watch(self, journal: Journal) -> Journal:
        self.journals.append(journal)
        return journal

    @property
    def entries(self) -> list[dict[str, Any]]:
        return [e for j in self.journals for e in j.entries]

    def record(self, entries: list[dict[str, Any]], *, results: dict[str, dict[str, Any]] | None = None,
               fields: dict[str, Any] | None = None) -> bool:
        return records.record_task(self.incident, task=self.task, entries=entries, subject=self.subject,
                                   results=results, fields=fields, table=self.table)

    @contextmanager
    def recorded_on_failure(self, *, first: list[dict[str, Any]] = ()) -> Iterator[None]:
        """A failing attempt (TransientAwsError: Step Functions retries the task; or a crash) records what it
        changed (after the entries `first`) before the error leaves the handler: nothing this incident did is lost
        from the timeline. After a transient error its failed calls are recorded as ``retried``: the retry makes
        them again and records how they ended."""
        try:
            yield
        except Exception as exc:
            entries = list(first) + self.entries
            if isinstance(exc, TransientAwsError):
                entries = [dict(e, status="retried") if e.get("status") == "failed" else e for e in entries]
            if entries:
                self.record(entries)
            raise

    def earlier(self, attempt: int) -> list[dict[str, Any]]:
        """On a retry (`attempt` > 0: ``$$.State.RetryCount``), the entries the failed attempts of this execution
        recorded for this subject; [] on a first attempt (no read), or when the record cannot be read."""
        if attempt <= 0 or self.incident.get("disposition") == "duplicate":
            return []
        try:
            item = self.table().get(self.incident["incidentId"])
        except Exception:  # noqa: BLE001 - bookkeeping: the retry's own result stands
            return []
        return [e for e in records.journal(item, self.incident.get("executionId"))
                if e.get("task") == self.task and e.get("subject") == self.subject]


RESPONDER_TAGS = (TAG_INCIDENT, TAG_QUARANTINE)


def responder_tags(metadata: dict[str, Any]) -> dict[str, str]:
    """The responder's own tags on the instance as the isolation captured them before any change (what evidence
    needs to tell a first collection from a follow-up); the instance's other tags stay in the record."""
    tags = metadata.get("tags") or {}
    return {k: str(tags[k])[:256] for k in RESPONDER_TAGS if k in tags}


def _changed(entries: list[dict[str, Any]]) -> bool:
    return any(e.get("status") == "done" for e in entries)


def isolation_summary(result: dict[str, Any], *, earlier: list[dict[str, Any]] = ()) -> shapes.TargetSummary:
    """The isolation result as the state carries it. A retried isolation whose failed attempt made the changes
    (the retry finds everything already so) is ``isolated``, not ``already_isolated``: this incident did it."""
    from responder.isolation import step_statuses

    entries = list(earlier) + list(result.get("entries") or [])
    status = result.get("status") or "failed"
    if status == "already_isolated" and _changed(list(earlier)):
        status = "isolated"
    return shapes.summary("isolation", result.get("instanceId") or result.get("target") or "", status,
                          entries=entries, steps=step_statuses(entries), reason=result.get("reason"),
                          error=result.get("error"), message=result.get("message"))


def identity_summary(result: dict[str, Any]) -> shapes.TargetSummary:
    """An identity's result as the state carries it (its manual steps, tags read, login profile... are in the
    record's ``results``)."""
    entries = result.get("entries") or []
    failed = next((e for e in entries if e.get("status") == "failed"), {})
    return shapes.summary("identity", result.get("target") or "", result.get("status") or "failed", entries=entries,
                          type=result.get("type"), name=result.get("name"), reason=result.get("reason"),
                          error=result.get("error") or failed.get("error"),
                          message=result.get("message") or failed.get("message"))


def evidence_summary(state: dict[str, Any], entries: list[dict[str, Any]], *,
                     changes_before: int = 0) -> shapes.TargetSummary:
    """The evidence state's short form: status, why, counts (volumes, snapshots, copies, digests)."""
    snapshots = [s for s in state.get("snapshots") or [] if isinstance(s, dict)]
    counts = {"volumes": len(snapshots) + len(state.get("missingVolumes") or []),
              "done": sum(1 for s in snapshots if s.get("stage") == "done"),
              "failed": sum(1 for s in snapshots if s.get("stage") == "failed")}
    out = shapes.summary("evidence", state.get("instanceId") or "", state.get("status") or "in_progress",
                         entries=entries, reason=state.get("reason"), error=state.get("error"),
                         message=state.get("message"), counts=counts)
    out["changes"] = out.get("changes", 0) + changes_before
    return out
