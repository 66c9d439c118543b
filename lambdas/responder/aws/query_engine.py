"""What the two trail engines' adapters (aws/athena.py, aws/lake.py) share: polling a query until it ends or the
caller's deadline, and reading its result pages within a row bound and the deadline. No AWS call of its own."""
from __future__ import annotations

from typing import Any, Callable


def poll(describe: Callable[[], dict[str, Any]], state_of: Callable[[dict[str, Any]], str], done: tuple[str, ...], *,
         deadline: float, monotonic: Callable[[], float], sleep: Callable[[float], None],
         interval: float = 1.0) -> tuple[dict[str, Any], int]:
    """Call `describe` until `state_of` its answer is in `done` or the deadline would pass (back-off 0.25 s to
    `interval`). Returns (the last answer, how many calls)."""
    polls, delay = 0, min(0.25, interval)
    while True:
        answer = describe()
        polls += 1
        if state_of(answer) in done or monotonic() + delay > deadline:
            return answer, polls
        sleep(delay)
        delay = min(delay * 2, interval)


def pages(fetch: Callable[[dict[str, Any]], dict[str, Any]], rows_of: Callable[[dict[str, Any], int], list[dict]],
          params: dict[str, Any], *, max_rows: int, deadline: float,
          monotonic: Callable[[], float]) -> dict[str, Any]:
    """Read result pages (`fetch(params)`, `rows_of(page, page_number)`) following ``NextToken``, at most `max_rows`
    rows and until the deadline. Returns ``{"rows", "pages", "truncated"}``."""
    rows: list[dict[str, Any]] = []
    count, truncated = 0, False
    while True:
        page = fetch(params)
        count += 1
        rows.extend(rows_of(page, count))
        token = page.get("NextToken")
        if len(rows) > max_rows:
            rows, truncated = rows[:max_rows], True
            break
        if not token:
            break
        if monotonic() > deadline:
            truncated = True
            break
        params = {**params, "NextToken": token}
    return {"rows": rows, "pages": count, "truncated": truncated}
