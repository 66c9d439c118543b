"""Finalize: turn the workflow's state into the incident summary (the execution output)."""
from __future__ import annotations

from typing import Any

from responder.outcome import decide


def summary(state: dict[str, Any]) -> dict[str, Any]:
    incident = state.get("incident") or {}
    results = state.get("results") or []
    identity = results[0] if len(results) > 0 else {}
    instances = results[1] if len(results) > 1 else []
    decision = decide(state)
    out: dict[str, Any] = {
        "incidentId": incident.get("incidentId"),
        "outcome": decision["outcome"],
        "fail": decision["fail"],
        "error": decision["error"],
        "cause": decision["cause"],
        "origin": incident.get("origin"),
        "accountId": incident.get("accountId"),
        "region": incident.get("region"),
        "findingType": incident.get("findingType"),
        "severity": incident.get("severity"),
        "dryRun": bool(incident.get("dryRun")),
        "disposition": incident.get("disposition"),
        "dispositionReason": incident.get("dispositionReason"),
        "cutoff": incident.get("cutoff"),
        "identities": (identity or {}).get("identities", []),
        "instances": instances or [],
    }
    if state.get("error"):
        out["workflowError"] = state["error"]
    if out["dryRun"]:
        out["plan"] = [e for t in out["identities"] for e in t.get("entries", []) if e["status"] == "planned"]
        for item in out["instances"]:
            for part in ("isolation", "evidence"):
                out["plan"] += [e for e in (item.get(part) or {}).get("entries", []) if e.get("status") == "planned"]
    manual = [{"target": t.get("target"), "steps": t["manualSteps"]} for t in out["identities"] if t.get("manualSteps")]
    if manual:
        out["manualSteps"] = manual
    return out


def finalize(state: dict[str, Any], *, execution_id: str = "") -> dict[str, Any]:
    out = summary(state)
    out["executionId"] = execution_id
    return out
