"""Printing helpers for the demo: a readable timeline of what the responder did and why."""
from __future__ import annotations

import textwrap

WIDTH = 110


def title(text: str) -> None:
    print()
    print("=" * WIDTH)
    print(text)
    print("=" * WIDTH)


def say(text: str, indent: int = 0) -> None:
    for line in textwrap.wrap(text, WIDTH - indent) or [""]:
        print(" " * indent + line)


def timeline(run) -> None:
    """The execution: states entered, then every action with its result."""
    say(f"execution {run.name}: {run.status}" + (f"  ({run.error})" if run.error else ""), 2)
    say("states: " + " -> ".join(run.states), 4)
    out = run.output or {}
    if not out:
        if run.cause:
            say(f"cause: {run.cause[:400]}", 4)
        return
    say(f"outcome: {out.get('outcome')}" + (f"  - {out['dispositionReason']}" if out.get("dispositionReason") else ""), 4)
    for target in out.get("identities", []):
        say(f"{target['type']} {target.get('target')}: {target['status']}", 4)
        _entries(target.get("entries", []))
        for step in target.get("manualSteps", []):
            say(f"- manual: {step}", 8)
    for item in out.get("instances", []):
        for part in ("isolation", "evidence"):
            value = item.get(part) or {}
            say(f"instance {item.get('instanceId')} {part}: {value.get('status', value.get('Error'))}", 4)
            if part == "evidence":
                _summary(value.get("entries", []))
            else:
                _entries(value.get("entries", []))


def _entries(entries: list[dict]) -> None:
    for e in entries:
        what = e.get("api") or e.get("step") or ""
        extra = e.get("detail") or e.get("error") or ""
        say(f"{e['time'][11:19]}  {e['status']:<10} {what:<40} {e.get('target', '')}  {extra}".rstrip(), 6)


def _summary(entries: list[dict]) -> None:
    """Many similar calls (one per snapshot): counted by API and result."""
    counts: dict[str, int] = {}
    for e in entries:
        key = f"{e.get('api') or e.get('step')} {e['status']}"
        counts[key] = counts.get(key, 0) + 1
    say("; ".join(f"{k} x{n}" for k, n in counts.items()), 6)
