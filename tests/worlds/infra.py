"""The synthesized cloud assemblies the infrastructure tests read.

Each layout is synthesized once per test run with the pinned CDK CLI, offline, exactly as the README says
(`cdk synth --no-notices` with telemetry and the version check off), cdk-nag included: an unacknowledged finding
fails that synth. The xdist workers share the result (a file lock: the first worker synthesizes, the others read).
"""
from __future__ import annotations

import fcntl
import json
import os
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from stacks import names
from stacks.catalog import ROOT
from stacks.config import Config, load_context

CDK = ROOT / "node_modules" / ".bin" / "cdk"
OFFLINE_ENV = {
    "CDK_DISABLE_CLI_TELEMETRY": "true",
    "CDK_DISABLE_VERSION_CHECK": "1",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
}
EMAIL = "soc@example.com"
# cdk.json ships an example externalId that the configuration refuses: every deployment sets its own.
EXTERNAL_ID = "ir-responder-test-external-id"
# layout -> context given on the command line (on top of cdk.json)
LAYOUTS: dict[str, dict[str, str]] = {
    "multi-account": {"externalId": EXTERNAL_ID},
    "single-account": {"layout": "single-account", "notificationEmail": EMAIL, "externalId": EXTERNAL_ID},
}


def synth_command(outdir: Path, context: dict[str, str]) -> list[str]:
    command = [str(CDK), "synth", "--no-notices", "--quiet", "--output", str(outdir)]
    for key, value in context.items():
        command += ["--context", f"{key}={value}"]
    return command


@dataclass
class Assembly:
    layout: str
    outdir: Path
    config: Config
    seconds: float
    _templates: dict[str, dict] = field(default_factory=dict, repr=False)

    @property
    def manifest(self) -> dict:
        return json.loads((self.outdir / "manifest.json").read_text())

    @property
    def stacks(self) -> dict[str, str]:
        """stack name -> environment (aws://account/region)."""
        return {name: a["environment"] for name, a in self.manifest["artifacts"].items()
                if a["type"] == "aws:cloudformation:stack"}

    def template(self, stack: str) -> dict:
        if stack not in self._templates:
            self._templates[stack] = json.loads((self.outdir / f"{stack}.template.json").read_text())
        return self._templates[stack]

    def metadata(self, stack: str) -> dict[str, list[dict]]:
        return json.loads((self.outdir / f"{stack}.metadata.json").read_text())

    def resources(self, stack: str, type_: str) -> dict[str, dict]:
        return {k: v for k, v in self.template(stack)["Resources"].items() if v["Type"] == type_}

    def one(self, stack: str, type_: str, **properties: Any) -> dict:
        """The one resource of `type_` whose properties include `properties`."""
        found = [r for r in self.resources(stack, type_).values()
                 if all(r["Properties"].get(k) == v for k, v in properties.items())]
        assert len(found) == 1, f"{stack}: {len(found)} {type_} with {properties}"
        return found[0]

    @property
    def member_stacks(self) -> list[str]:
        return [names.member_stack(a) for a in self.config.member_accounts]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def synthesize(layout: str, root: Path) -> Assembly:
    context = LAYOUTS[layout]
    outdir = root / f"cdk.out.{layout}"
    done = outdir / "synth-seconds"
    with _locked(root / f"{layout}.lock"):
        if not done.exists():
            env = {**os.environ, **OFFLINE_ENV}
            started = time.monotonic()
            result = subprocess.run(synth_command(outdir, context), cwd=ROOT, env=env, capture_output=True,
                                    text=True, timeout=600)
            if result.returncode != 0:
                pytest.fail(f"cdk synth ({layout}) failed:\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}")
            done.write_text(f"{time.monotonic() - started:.1f}")
    config = Config.from_context({**load_context(), **context})
    return Assembly(layout=layout, outdir=outdir, config=config, seconds=float(done.read_text()))


def shared_root(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    base = tmp_path_factory.getbasetemp()
    return (base.parent if worker_id != "master" else base) / "infra-assemblies"


@pytest.fixture(scope="session")
def multi(tmp_path_factory, worker_id) -> Assembly:
    return synthesize("multi-account", shared_root(tmp_path_factory, worker_id))


@pytest.fixture(scope="session")
def single(tmp_path_factory, worker_id) -> Assembly:
    return synthesize("single-account", shared_root(tmp_path_factory, worker_id))


@pytest.fixture(scope="session", params=sorted(LAYOUTS))
def assembly(request, tmp_path_factory, worker_id) -> Assembly:
    return synthesize(request.param, shared_root(tmp_path_factory, worker_id))


# ----------------------------------------------------------------------------------------------------------------
# Reading policies out of templates
# ----------------------------------------------------------------------------------------------------------------
def flat(value: Any) -> str:
    """A template value (Fn::Join, Ref, GetAtt...) as text: `arn:<AWS::Partition>:iam::111111111111:root`."""
    from stacks.nag import flatten

    return flatten(value)


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def role_statements(role: dict) -> list[dict]:
    """Every statement of the role's inline policies."""
    return [s for p in role["Properties"].get("Policies", []) for s in p["PolicyDocument"]["Statement"]]


def allowed_actions(statements: list[dict]) -> set[str]:
    return {a for s in statements if s["Effect"] == "Allow" for a in as_list(s["Action"])}


def role(assembly: Assembly, stack: str, name: str) -> dict:
    return assembly.one(stack, "AWS::IAM::Role", RoleName=name)
