"""Lean service models: botocore's models cut down to the operations the responder calls, parsed at cold start
instead of the full ones (EC2's model alone is 4 MB of JSON: parsing it and building its 700 client methods costs
more than importing boto3; see bench/cold_start.py).

`MODELS` (``lambdas/responder/aws/models``) holds, for each service in `SERVICES`, botocore's ``service-2`` model
of the installed botocore's API version with only the operations whose method name (``describe_instances``)
appears in the responder's code, the shapes they reach, and no documentation; and ``endpoints.json``, botocore's
endpoint data (every partition and Region) with only the entries of those services (1.2 MB parsed at every cold
start otherwise). aws/clients.py puts them first on the loader's search path; everything else (endpoint rules,
paginators, waiters) still comes from botocore. Every service the responder makes a client for is in `SERVICES`
(tests/unit/test_service_models.py). A call to an operation that is not in the lean model fails loudly (AttributeError), so:

    .venv/bin/python -m responder.aws.service_models    # after adding a call, or upgrading botocore

regenerates them; tests/unit/test_service_models.py fails while they are not what this generates.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

MODELS = Path(__file__).resolve().parent / "models"
CODE = Path(__file__).resolve().parents[2]  # lambdas/: handlers and responder
SERVICES = ("athena", "autoscaling", "cloudtrail", "dynamodb", "ebs", "ec2", "elb", "elbv2", "iam", "kms", "s3", "secretsmanager",
            "sns", "stepfunctions", "sts")
_TOKEN = re.compile(r"\b[a-z][a-z0-9_]+\b")
_DROP = frozenset({"documentation", "documentationUrl"})


def code_tokens(root: Path = CODE) -> set[str]:
    """Every lower-case identifier or word in the responder's Python code (method names among them)."""
    found: set[str] = set()
    for path in sorted(root.rglob("*.py")):
        found.update(_TOKEN.findall(path.read_text()))
    return found


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in _DROP}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _reach(shapes: dict[str, dict], name: str, keep: set[str]) -> None:
    if name in keep:
        return
    keep.add(name)
    shape = shapes[name]
    refs = [m["shape"] for m in (shape.get("members") or {}).values()]
    refs += [shape[k]["shape"] for k in ("member", "key", "value") if k in shape]
    for ref in refs:
        _reach(shapes, ref, keep)


def lean_model(service: str, tokens: set[str]) -> tuple[str, dict[str, Any]]:
    """(API version, lean service-2 model) of `service` for the operations named in `tokens`."""
    import botocore.session
    from botocore import xform_name

    loader = botocore.session.get_session().get_component("data_loader")
    version = loader.determine_latest_version(service, "service-2")
    full = loader.load_service_model(service, "service-2", version)
    operations = {name: op for name, op in full["operations"].items() if xform_name(name) in tokens}
    keep: set[str] = set()
    for op in operations.values():
        for ref in [op.get("input"), op.get("output"), *op.get("errors", [])]:
            if ref:
                _reach(full["shapes"], ref["shape"], keep)
    model = {"version": full.get("version", "2.0"), "metadata": full["metadata"],
             "operations": _strip(operations), "shapes": _strip({n: full["shapes"][n] for n in sorted(keep)})}
    return version, model


def lean_endpoints(prefixes: set[str]) -> dict[str, Any]:
    """botocore's endpoint data with, in every partition, only the services whose endpoint prefix is in `prefixes`."""
    import botocore.session

    full = botocore.session.get_session().get_component("data_loader").load_data("endpoints")
    return {**full, "partitions": [{**partition, "services": {name: entry for name, entry in partition["services"].items()
                                                              if name in prefixes}}
                                   for partition in full["partitions"]]}


def generate(target: Path = MODELS, tokens: set[str] | None = None) -> dict[str, list[str]]:
    """Write the lean models and endpoint data under `target`; returns the operations kept per service."""
    tokens = code_tokens() if tokens is None else tokens
    kept: dict[str, list[str]] = {}
    prefixes: set[str] = set()
    for service in SERVICES:
        version, model = lean_model(service, tokens)
        path = target / service / version / "service-2.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(model, sort_keys=True, separators=(",", ":")) + "\n")
        kept[service] = sorted(model["operations"])
        prefixes.add(model["metadata"]["endpointPrefix"])
    (target / "endpoints.json").write_text(json.dumps(lean_endpoints(prefixes), sort_keys=True,
                                                      separators=(",", ":")) + "\n")
    return kept


if __name__ == "__main__":
    sys.path.insert(0, str(CODE))
    for service, operations in generate().items():
        print(f"{service}: {len(operations)} operations ({', '.join(operations)})")
