"""The shapes the workflow's state carries between states (docs/ARCHITECTURE.md, "Shapes" and "Payload bound").

One shape per concept, each bounded whatever the input or the AWS account holds:

``Incident``        the normalized incident (responder.triage): targets, where to act, cut-off. Bounded by triage
                    (at most 50 names per target list, every string cut or pattern-checked).
``Failure``         a task (or the workflow) that failed as a whole: the one failure slot every Catch writes
                    (through a Pass that turns Step Functions' ``{Error, Cause}`` into this shape).
``TargetSummary``   one target's result as a task returns it to the state machine: status, why, how many calls
                    changed something. The full journal (every call) is in the incident record's timeline and the
                    manifest, the full result (snapshot ids, digests, metadata) in the record's ``results``.
``InstanceSummary`` one Map iteration's output: the instance's isolation and evidence summaries.
``Branches``        the Parallel state's output, named by its ResultSelector: ``{"identity", "instances"}``.

State: ``{"incident": Incident, "results": Branches, "failure": Failure}`` (``results`` once Contain ran,
``failure`` only when a Catch fired; no ``incident`` when Triage itself failed).
"""
from __future__ import annotations

from typing import Any, Optional, TypedDict

MESSAGE_CHARS = 300
CAUSE_CHARS = 1000


class Failure(TypedDict):
    task: str  # triage | identity | isolation | evidence | contain | finalize
    target: str
    error: str
    cause: str


class TargetSummary(TypedDict, total=False):
    target: str  # identities only (an instance's parts are named by InstanceSummary)
    type: str  # identity type (IAMUser, AssumedRole, Root...)
    name: Optional[str]
    target: str
    status: str
    reason: Optional[str]
    error: Optional[str]
    message: Optional[str]
    steps: dict[str, str]  # isolation: {step: status}
    changes: int  # calls that changed something (done) or would (planned)
    counts: dict[str, int]  # evidence: volumes, snapshots, copies, hashed
    failure: Failure  # the task failed as a whole (after its retries)
    recorded: bool  # False: the journal of this target could not be written to the incident record


class IdentityBranch(TypedDict, total=False):
    status: str
    identities: list[TargetSummary]
    scope: dict[str, int]  # captures, failed
    failure: Failure


class InstanceSummary(TypedDict, total=False):
    instanceId: str
    isolation: TargetSummary
    evidence: TargetSummary


class Branches(TypedDict):
    identity: IdentityBranch
    instances: list[InstanceSummary]


class Incident(TypedDict, total=False):
    incidentId: str
    origin: str
    accountId: str
    region: str
    partition: str
    reason: str
    dryRun: bool
    observeOnly: bool
    disposition: str
    dispositionReason: str
    identities: list[dict[str, Any]]
    instances: list[str]
    cutoff: str
    triagedAt: str
    executionId: str
    window: dict[str, str]
    record: dict[str, Any]
    findingId: str
    findingType: str
    findingArn: str
    severity: float
    count: int
    resourceType: str
    updatedAt: str
    eventLastSeen: str
    eventFirstSeen: str
    protectionConfigError: str
    duplicateOf: dict[str, Any]


def _text(value: Any, limit: int) -> Optional[str]:
    return None if value in (None, "") else str(value)[:limit]


def failure(task: str, target: str, error: Any, cause: Any = "") -> Failure:
    return {"task": task, "target": str(target or task), "error": str(error or "TaskFailed")[:200],
            "cause": str(cause or "")[:CAUSE_CHARS]}


def failure_of(value: Any, *, task: str = "workflow", target: str = "") -> Optional[Failure]:
    """The failure slot's value as a Failure (None when the slot is empty). Every Catch goes through a Pass that
    writes this shape; a Failure is returned as it is."""
    if not isinstance(value, dict) or not value:
        return None
    return failure(str(value.get("task") or task), str(value.get("target") or target), value.get("error"),
                   value.get("cause"))


def summary(kind: str, target: str, status: str, *, entries: list[dict[str, Any]] = (), **fields: Any) -> TargetSummary:
    """A TargetSummary (`kind`: identity, isolation or evidence) from a task's result fields and its journal entries
    (only counted, never carried). Kept small: it is what the state carries per target."""
    out: TargetSummary = {"status": status,
                          "changes": sum(1 for e in entries if e.get("status") in ("done", "planned"))}
    if kind == "identity":  # an instance's parts are named by their place: {instanceId, isolation, evidence}
        out = {"target": target, **out}
    for key in ("type", "name", "reason", "steps", "counts", "recorded"):
        if fields.get(key) not in (None, "", {}):
            out[key] = fields[key]  # type: ignore[literal-required]
    for key in ("error", "message"):
        text = _text(fields.get(key), MESSAGE_CHARS)
        if text:
            out[key] = text  # type: ignore[literal-required]
    return out


# -- readers ---------------------------------------------------------------------------------------------
def branches(state: dict[str, Any]) -> Branches:
    """The Parallel state's output (``$.results``), whatever ran: the one reader of it."""
    results = state.get("results") if isinstance(state.get("results"), dict) else {}
    identity = results.get("identity") if isinstance(results.get("identity"), dict) else {}
    instances = [i for i in (results.get("instances") or []) if isinstance(i, dict)]
    return {"identity": identity, "instances": instances}


def parts(item: InstanceSummary) -> list[tuple[str, TargetSummary]]:
    """[("isolation", summary), ("evidence", summary)] of one instance (absent parts left out)."""
    return [(name, item[name]) for name in ("isolation", "evidence")  # type: ignore[literal-required]
            if isinstance(item.get(name), dict)]


def status_of(part: TargetSummary) -> Optional[str]:
    if part.get("failure"):
        return "failed"
    return part.get("status")


def target_summaries(state: dict[str, Any]) -> list[TargetSummary]:
    """Every target's summary in the state: identities, then each instance's isolation and evidence."""
    found = branches(state)
    out = list(found["identity"].get("identities") or [])
    for item in found["instances"]:
        out += [part for _, part in parts(item)]
    return out


def failures(state: dict[str, Any]) -> list[Failure]:
    """Every task failure (the failure slots): the identity task, each instance's tasks, the workflow."""
    found = branches(state)
    out = [f for f in [failure_of(found["identity"].get("failure"), task="identity", target="identities")] if f]
    for item in found["instances"]:
        for name, part in parts(item):
            f = failure_of(part.get("failure"), task=name, target=item.get("instanceId") or "instance")
            if f:
                out.append(f)
    workflow = failure_of(state.get("failure"))
    if workflow:
        out.append(workflow)
    return out
