"""Task IsolateInstance: capture metadata, protect, detach, isolate the network, swap credentials, deregister, tag.

Returns ``{"summary": TargetSummary, "volumes": [...], "tags": the responder's own tags as captured}``
(responder.shapes): the journal goes to the incident
record as it happens - also when the attempt fails and Step Functions retries the task - and the full result
(metadata, steps) into the record's ``results``."""
from typing import Any, Callable

from responder.logs import Logger

from responder.adapters import Adapters
from responder.aws.autoscaling import AutoScaling
from responder.aws.clients import Clients, forensics_client, member_client
from responder.aws.dynamodb import incident_table
from responder.aws.ec2 import Ec2
from responder.aws.elb import ClassicLoadBalancers, TargetGroups
from responder.aws.evidence_bucket import WriteOnceBucket
from responder.aws.iam import Iam
from responder.isolation import isolate
from responder.journal import Journal
from responder.settings import Settings, settings
from responder.tasks import TaskJournal, isolation_summary, responder_tags

logger = Logger()


def adapters(journal: Journal, member: Callable[[str], Any], config: Settings,
             forensics: Callable[[str], Any] | None = None) -> Adapters:
    """The adapters of one isolation (responder.isolation): `member(service)` gives a client in the instance's
    account, `forensics(service)` one in the forensics account (None: no evidence bucket is written)."""
    return Adapters(
        ec2=lambda: Ec2(member("ec2"), journal),
        autoscaling=lambda: AutoScaling(member("autoscaling"), journal),
        classic=lambda: ClassicLoadBalancers(member("elb"), journal),
        target_groups=lambda: TargetGroups(member("elbv2"), journal),
        iam=lambda: Iam(member("iam"), journal),
        evidence=lambda: WriteOnceBucket(forensics("s3"), journal, config.evidence_bucket,
                                         owner=config.forensics_account)
        if config.evidence_bucket and forensics else None,
    )


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: object) -> dict:
    incident, instance_id = event["incident"], event["instanceId"]
    config = settings()
    aws = Clients(config, incident, member=member_client, forensics=forensics_client)
    journals = TaskJournal(incident, task="isolation", subject=instance_id,
                           table=lambda: incident_table(aws, config.incident_table))

    def adapters_for(journal):
        return adapters(journals.watch(journal), aws.member, config,
                        forensics=aws.forensics if config.forensics_role_arn else None)

    with journals.recorded_on_failure():
        result = isolate(instance_id, incident, adapters_for=adapters_for, settings=config,
                         time_left=lambda: context.get_remaining_time_in_millis() / 1000 - 20)  # 20 s: record + return
    summary = isolation_summary(result, earlier=journals.earlier(int(event.get("attempt") or 0)))
    if not journals.record(result.get("entries") or [], results={f"isolation:{instance_id}": result}):
        summary["recorded"] = False
    logger.info("isolation", extra={"incident": incident["incidentId"], "instance": instance_id,
                                    "status": summary["status"], "steps": summary.get("steps")})
    metadata = result.get("metadata") or {}
    return {"summary": summary, "volumes": metadata.get("volumes") or [], "tags": responder_tags(metadata)}
