"""The journal: every change the responder makes to an AWS account goes through `Journal.call`.

That one choke point gives three guarantees the rest of the code relies on:

* **dry run** - with `dry_run=True` the call is not made; the journal records the exact API and parameters it
  would have used (`status: planned`), so a plan lists every change and nothing changes;
* **timeline** - every call is recorded with what, target, when, result and the AWS request id or the error code;
* **no silent failure** - inside `Journal.step`, a non-transient AWS error fails that step (recorded, the action
  goes on with its independent steps and reports `failed`); a transient one (throttling after the SDK's retries)
  is raised as `TransientAwsError`, so Step Functions retries the whole idempotent task.

Entries are plain JSON-ready dicts: they travel in the state machine's output and into the incident record.
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

from responder.errors import TransientAwsError, error_code, is_transient, recorded


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def api_name(client: Any, operation: str) -> str:
    """`iam:UpdateAccessKey` for (iam client, 'update_access_key'): the IAM action the call needs."""
    meta = client.meta
    prefix = meta.service_model.signing_name
    return f"{prefix}:{meta.method_to_api_mapping.get(operation, operation)}"


class StepFailed(Exception):
    """Raised inside a step to fail it with a reason that is not an AWS error (e.g. a precondition)."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


class Journal:
    def __init__(self, *, dry_run: bool = False, clock: Callable[[], datetime] = utcnow):
        self.dry_run = dry_run
        self._clock = clock
        self.entries: list[dict[str, Any]] = []
        self._step: str | None = None

    # -- recording -------------------------------------------------------------------------------------
    def _add(self, **entry: Any) -> dict[str, Any]:
        entry = {"time": iso(self._clock()), "step": self._step, **entry}
        self.entries.append(entry)
        return entry

    def note(self, status: str, target: str, **detail: Any) -> None:
        """Record an outcome that needed no change: unchanged, skipped, not_found, manual, protected..."""
        self._add(status=status, target=target, **detail)

    # -- changing --------------------------------------------------------------------------------------
    def call(self, client: Any, operation: str, *, target: str, accept: tuple[str, ...] = (),
             **params: Any) -> dict[str, Any] | None:
        """Make one mutating AWS call, or plan it in a dry run. Returns the response (None when planned).
        `accept`: error codes that mean "already so" (e.g. a conditional write that finds the object): recorded
        as ``unchanged`` with the code, and None is returned instead of raising."""
        api = api_name(client, operation)
        if self.dry_run:
            self._add(status="planned", api=api, target=target, params=params)
            return None
        try:
            response = getattr(client, operation)(**params)
        except Exception as exc:  # recorded, then re-raised for the step (or the caller) to judge
            if accept and error_code(exc) in accept:
                self._add(status="unchanged", api=api, target=target, detail=error_code(exc))
                return None
            self._add(status="failed", api=api, target=target, error=error_code(exc), message=str(exc)[:400])
            # inside a step, judged here with the service's own codes; outside, the caller applies the policy
            if self._step and is_transient(exc, client.meta.service_model.service_name):
                raise TransientAwsError(f"{self._step} ({api}) on {target}: {error_code(exc)}") from exc
            raise
        request_id = (response or {}).get("ResponseMetadata", {}).get("RequestId")
        self._add(status="done", api=api, target=target, requestId=request_id)
        return response

    @contextmanager
    def step(self, name: str, target: str) -> Iterator[None]:
        """One logical step. Non-transient AWS errors are recorded as the step's failure and swallowed here
        (and only here); transient ones become TransientAwsError; programming errors propagate (errors.classify)."""
        outer, self._step = self._step, name
        try:
            yield
        except StepFailed as exc:
            self._add(status="failed", target=target, error=exc.code, message=str(exc))
        except Exception as exc:
            code = recorded(exc, f"{name} on {target}")  # transient: raised for a retry; a bug: raised as is
            if not self.entries or self.entries[-1].get("status") != "failed":
                self._add(status="failed", target=target, error=code, message=str(exc)[:400])
        finally:
            self._step = outer

    # -- summary ---------------------------------------------------------------------------------------
    @property
    def failures(self) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["status"] == "failed"]

    @property
    def changes(self) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["status"] in ("done", "planned")]
