"""The layers hold: the domain (`lambdas/responder/*.py`) never imports the AWS adapters (`responder.aws`) or the
handlers; the handlers and `responder.aws` do the wiring. Checked on the source (ast), so a new import anywhere in
a module - at the top, inside a function, relative, or by name through importlib - fails here."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

LAMBDAS = Path(__file__).resolve().parents[2] / "lambdas"
# responder.permissions collects the adapters' IAM declarations for the stacks and tests (by module name): it is
# the IAM wiring, never imported by a handler or the domain.
WIRING = {"permissions.py"}
DOMAIN = sorted(p for p in (LAMBDAS / "responder").glob("*.py") if p.name not in WIRING)
HANDLERS = sorted(p for p in (LAMBDAS / "handlers").glob("*.py") if p.name != "__init__.py")


def forbidden_imports(source: str, *, package: str = "responder") -> list[str]:
    """Every import of responder.aws / handlers in `source` (a module of `package`), as written."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from .aws import x / from . import aws
                base = ".".join([package, base]) if base else package
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value] if re.fullmatch(r"(responder\.aws|handlers)(\.\w+)*", node.value) else []
        found += [n for n in names if re.match(r"responder\.aws(\.|$)|handlers(\.|$)", n)]
    return found


@pytest.mark.parametrize("path", DOMAIN, ids=lambda p: p.name)
def test_the_domain_never_imports_the_adapters_or_the_handlers(path):
    found = forbidden_imports(path.read_text())
    assert not found, f"{path.name} imports {found}: pass adapters in from the handler (responder.adapters)"


def test_the_domain_is_the_whole_package_but_the_adapters():
    assert {p.name for p in DOMAIN} >= {"triage.py", "scope.py", "identity.py", "isolation.py", "evidence.py",
                                         "finalize.py", "records.py", "tasks.py", "custody.py", "blocklist.py"}
    assert not any(p.parent.name == "aws" for p in DOMAIN)


@pytest.mark.parametrize("path", HANDLERS, ids=lambda p: p.name)
def test_every_handler_builds_its_clients_the_same_way(path):
    """One `Clients` per invocation (own role, member role, forensics role), never a client made by hand; the role
    factories it is given (`member_client`, `member_read_client`, `member_release_client`, `forensics_client`, `signer_client`: what
    stacks/tasks.py grants sts:AssumeRole for) only go into it."""
    factories = {"member_client", "member_read_client", "member_release_client", "forensics_client", "signer_client"}
    tree = ast.parse(path.read_text())
    from_clients = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                    and n.module == "responder.aws.clients" for a in n.names}
    assert "Clients" in from_clients and from_clients <= {"Clients"} | factories
    given = {k.arg: getattr(k.value, "id", None) for n in ast.walk(tree) if isinstance(n, ast.Call)
             and getattr(n.func, "id", None) == "Clients" for k in n.keywords}
    assert {v for k, v in given.items() if k in ("member", "forensics", "signer")} == from_clients - {"Clients"}
    used = [n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id in factories]
    assert sorted(used) == sorted(from_clients - {"Clients"})  # each used once: handed to Clients
    assert not any(isinstance(n, ast.Import) and any(a.name.startswith(("boto3", "botocore")) for a in n.names)
                   or isinstance(n, ast.ImportFrom) and (n.module or "").startswith(("boto3", "botocore"))
                   for n in ast.walk(tree))
    assert any(isinstance(n, ast.Call) and getattr(n.func, "id", None) == "Clients" for n in ast.walk(tree))


@pytest.mark.parametrize("source", [
    "from responder.aws.iam import Iam",
    "import responder.aws.ec2",
    "from responder.aws import autoscaling",
    "from responder import aws",
    "from .aws.kms import MESSAGE_TYPE",
    "from . import aws",
    "def f():\n    from responder.aws.clients import client\n    return client",
    "import importlib\nmodule = importlib.import_module('responder.aws.s3')",
    "from handlers.isolate import adapters",
])
def test_the_check_finds_every_way_of_importing_them(source):
    assert forbidden_imports(source)


def test_a_task_that_does_not_act_in_an_account_cannot_make_its_clients():
    from responder.aws.clients import Clients
    from responder.settings import Settings

    aws = Clients(Settings.from_env({}), {"incidentId": "i", "accountId": "444455556666", "region": "eu-west-1",
                                          "partition": "aws"})
    with pytest.raises(RuntimeError, match="member"):
        aws.member("iam")
    with pytest.raises(RuntimeError, match="forensics"):
        aws.forensics("s3")


def test_the_check_leaves_the_domain_s_own_imports_alone():
    assert forbidden_imports("from responder.adapters import Adapters\nfrom responder import arns, scope\n"
                             "import botocore\n'''AWS calls in `responder.aws`.'''") == []
