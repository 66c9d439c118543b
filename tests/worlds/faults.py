"""Fault injection for workflow tests: make chosen AWS calls of the handlers fail with a chosen error code.

Calls are failed before botocore's own retries (as if AWS kept answering with that code), and only calls made by
our Lambda handlers are touched, never the calls the local Step Functions engine or the test itself makes.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator
from unittest import mock

from botocore.client import BaseClient
from botocore.exceptions import ClientError

from state_machines import local


class Fault:
    def __init__(self, api: str, code: str, times: int | None, message: str):
        self.api, self.code, self.times, self.message = api, code, times, message
        self.raised = 0

    def hit(self, api: str) -> bool:
        if api != self.api or (self.times is not None and self.raised >= self.times):
            return False
        self.raised += 1
        return True


@contextmanager
def inject(api: str, code: str, *, times: int | None = None, message: str = "injected fault") -> Iterator[Fault]:
    """Fail the handlers' calls to `api` (e.g. "iam:AttachUserPolicy") with `code`, `times` times (None: always)."""
    fault = Fault(api, code, times, message)
    original = BaseClient._make_api_call

    def make_api_call(self, operation_name, api_params):
        api_name = f"{self.meta.service_model.signing_name}:{operation_name}"
        if local._running_function() and fault.hit(api_name):
            raise ClientError({"Error": {"Code": code, "Message": message},
                               "ResponseMetadata": {"RequestId": "injected", "HTTPStatusCode": 400}}, operation_name)
        return original(self, operation_name, api_params)

    with mock.patch.object(BaseClient, "_make_api_call", make_api_call):
        yield fault
