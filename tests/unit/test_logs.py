"""The handlers' lean logger (responder.logs): one JSON object per line, with the Lambda context and the extras,
cold_start true only on the first invocation, and the domain's standard loggers in the same format."""
from __future__ import annotations

import io
import json
import logging
from types import SimpleNamespace

from responder import logs


def test_json_lines_with_the_lambda_context(monkeypatch):
    out = io.StringIO()
    logger = logs.Logger()
    for name in ("ir", "responder"):
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler.formatter, logs.JsonFormatter):
                monkeypatch.setattr(handler, "stream", out)
    monkeypatch.setattr(logs, "_cold", [True])
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-abc;Parent=def;Sampled=1")
    context = SimpleNamespace(function_name="ir-responder-Triage", memory_limit_in_mb=256, aws_request_id="req-1",
                              invoked_function_arn="arn:aws:lambda:eu-west-1:1:function:ir-responder-Triage")

    @logger.inject_lambda_context(log_event=False)
    def handler(event, ctx):
        logger.info("triaged", extra={"incident": event["id"]})
        logging.getLogger("responder.records").warning("record %s not updated", event["id"])
        return "ok"

    assert handler({"id": "gd-1"}, context) == "ok"
    handler({"id": "gd-2"}, context)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(line["message"], line["cold_start"]) for line in lines] == [
        ("triaged", True), ("record gd-1 not updated", True), ("triaged", False), ("record gd-2 not updated", False)]
    first = lines[0]
    assert first["incident"] == "gd-1" and first["level"] == "INFO" and first["location"].startswith("handler:")
    assert (first["function_name"], first["function_request_id"], first["xray_trace_id"]) == (
        "ir-responder-Triage", "req-1", "1-abc")
    assert first["timestamp"].endswith("Z") and first["service"] == "ir-responder"
    assert lines[1]["level"] == "WARNING"


def test_handlers_do_not_import_powertools():
    import subprocess
    import sys
    from pathlib import Path

    lambdas = Path(__file__).resolve().parents[2] / "lambdas"
    code = ("import sys; sys.path.insert(0, %r); import handlers.triage, handlers.identity, handlers.isolate, "
            "handlers.evidence, handlers.finalize; print(any(m.startswith('aws_lambda_powertools') for m in sys.modules))"
            % str(lambdas))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"AWS_DEFAULT_REGION": "us-east-1", "PATH": ""})
    assert out.stdout.strip() == "False"
