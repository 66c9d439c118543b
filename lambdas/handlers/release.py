"""Task Release: undo this responder's containment of the named targets of an incident (responder.release), through
the release role of the incident's account (only the undo actions), on request only.

Returns ``{"summary": {"status", "targets"}}``: the journal goes to the incident record (``release`` entries of the
timeline), the full result into the record's ``results`` (``release:<execution name>``)."""
from responder.logs import Logger

from responder import records
from responder.adapters import Adapters
from responder.aws.autoscaling import AutoScaling
from responder.aws.clients import Clients, member_release_client
from responder.aws.dynamodb import incident_table
from responder.aws.ec2 import Ec2
from responder.aws.elb import ClassicLoadBalancers, TargetGroups
from responder.aws.iam import Iam
from responder.aws.secrets import Secrets
from responder.identity import denies_all
from responder.journal import Journal
from responder.release import release, summary
from responder.settings import settings
from responder.tasks import TaskJournal

logger = Logger()


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: object) -> dict:
    incident = event["incident"]
    config = settings()
    aws = Clients(config, incident, member=member_release_client)
    table = (lambda: incident_table(aws, config.incident_table))
    journals = TaskJournal(incident, task="release", table=table)
    record = records.aws_call("read the incident record", lambda: table().get(incident["incidentId"]))

    def adapters(journal: Journal) -> Adapters:  # the instance side, every client on the release role
        return Adapters(ec2=lambda: Ec2(aws.member("ec2"), journal), iam=lambda: Iam(aws.member("iam"), journal),
                        classic=lambda: ClassicLoadBalancers(aws.member("elb"), journal),
                        target_groups=lambda: TargetGroups(aws.member("elbv2"), journal),
                        autoscaling=lambda: AutoScaling(aws.member("autoscaling"), journal))

    with journals.recorded_on_failure():
        result = release(incident, record=record, iam=lambda journal: Iam(aws.member("iam"), journal),
                         quarantine_policy_arn=config.quarantine_policy_arn, denies_all=denies_all,
                         journal=lambda: journals.watch(Journal(dry_run=bool(incident.get("dryRun")))),
                         adapters=adapters, deny_all_profile=config.deny_all_profile,
                         secrets=lambda journal: Secrets(aws.own("secretsmanager"), journal))
    entries = [dict(e, subject=t["target"]) for t in result["targets"] for e in t.get("entries") or []]
    short = summary(result)
    key = f"release:{records.execution_name(incident.get('executionId'))}"
    if not journals.record(entries, results={key: {"status": result["status"], "reason": incident.get("reason"),
                                                   "targets": short["targets"]}}):
        short["recorded"] = False
    logger.info("release", extra={"incident": incident["incidentId"], "status": result["status"]})
    return {"summary": short}
