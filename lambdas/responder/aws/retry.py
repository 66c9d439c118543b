"""A client seen through a retry of chosen error codes, for calls that pass a test (`when`).

`Journal.call` uses it like the client itself, so an attempt that finally succeeds is recorded once, as done, and
only the last failure (if every attempt fails) is recorded. Used for answers that AWS documents as "not yet"
(a resource this invocation just created, EC2's eventual consistency) or "busy" (Auto Scaling's
ResourceContention), which botocore's retry modes do not retry.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Iterable

from botocore.exceptions import ClientError

from responder.errors import error_code


class RetryingClient:
    def __init__(self, client: Any, codes: Iterable[str], delays: Iterable[float], *,
                 when: Callable[[str, dict], bool] = lambda operation, params: True,
                 sleep: Callable[[float], None] | None = None):
        self._c, self._codes, self._delays = client, frozenset(codes), tuple(delays)
        self._when, self._sleep = when, sleep
        self.meta = client.meta

    def __getattr__(self, operation: str) -> Any:
        method = getattr(self._c, operation)
        if not callable(method) or operation.startswith(("get_paginator", "can_paginate", "get_waiter")):
            return method

        def call(**params: Any) -> Any:
            if not self._when(operation, params):
                return method(**params)
            for delay in self._delays:
                try:
                    return method(**params)
                except ClientError as exc:
                    if error_code(exc) not in self._codes:
                        raise
                (self._sleep or time.sleep)(delay)
            return method(**params)

        return call
