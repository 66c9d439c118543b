"""Task IsolateInstance: capture metadata, protect, detach, isolate the network, swap credentials, deregister, tag.

Returns ``{"summary": TargetSummary, "volumes": [...], "tags": the responder's own tags as captured}``
(responder.shapes): the journal goes to the incident
record as it happens - also when the attempt fails and Step Functions retries the task - and the full result
(metadata, steps) into the record's ``results``."""
from responder.logs import Logger

from responder import records
from responder.aws.clients import forensics_client, member_client
from responder.isolation import Adapters, isolate
from responder.settings import settings
from responder.tasks import TaskJournal, isolation_summary, responder_tags

logger = Logger()


@logger.inject_lambda_context(log_event=False)
def handler(event: dict, context: object) -> dict:
    incident, instance_id = event["incident"], event["instanceId"]
    config = settings()
    journals = TaskJournal(incident, task="isolation", subject=instance_id)

    def member(service: str):
        return member_client(service, account=incident["accountId"], region=incident["region"],
                             partition=incident["partition"], label=incident["incidentId"], settings=config)

    def forensics(service: str):
        # the evidence bucket lives in the responder's region (region None: the function's own region)
        return forensics_client(service, region=None, label=incident["incidentId"], settings=config)

    def adapters_for(journal):
        return Adapters(journals.watch(journal), member, config,
                        forensics=forensics if config.forensics_role_arn else None)

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
