"""The functions' environment: a value for every name in `responder.settings.ENV`, from the deployment's
configuration. Synth fails when a name has no value here (a new setting must be deployed, not forgotten)."""
from __future__ import annotations

from stacks import names
from stacks.config import DEFAULT_QUARANTINE_POLICY_NAME, Config


class MissingSetting(ValueError):
    pass


def function_environment(config: Config, *, partition: str, table_name: str, topic_arn: str) -> dict[str, str]:
    from responder.settings import ENV, SERVICE_NAME

    forensics = config.forensics_account
    env = {
        "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
        "POWERTOOLS_LOG_LEVEL": config.log_level,
        "IR_MEMBER_ROLE_NAME": names.MEMBER_ROLE_NAME,
        "IR_EXTERNAL_ID": config.external_id,
        "IR_FORENSICS_ACCOUNT": forensics,
        "IR_FORENSICS_ROLE_ARN": names.role_arn(partition, forensics, names.FORENSICS_ROLE_NAME),
        "IR_FORENSICS_KEY_ARN": config.forensics_key_arn or names.key_alias_arn(
            partition, config.evidence_region, forensics, names.FORENSICS_KEY_ALIAS),
        "IR_SHARING_KEY_ALIAS": names.SHARING_KEY_ALIAS,
        "IR_DENY_ALL_PROFILE": names.DENY_ALL_PROFILE,
        "IR_EVIDENCE_BUCKET": names.evidence_bucket(forensics, config.evidence_region),
        "IR_INCIDENT_TABLE": table_name,
        "IR_TOPIC_ARN": topic_arn,
        "IR_QUARANTINE_POLICY_ARN": quarantine_policy_arn(config, partition),
        "IR_PROTECTED_PRINCIPALS": ",".join(config.protected_principals),
        "IR_PROTECTED_TAG": config.protected_tag,
        "IR_OBSERVE_ONLY": "true" if config.observe_only else "false",
        "IR_ISOLATION_CIDRS": ",".join(config.isolation_cidrs),
        "IR_SNAPSHOT_RETENTION": str(config.snapshot_retention),
        "IR_EVIDENCE_MIN_INTERVAL_MINUTES": str(config.evidence_min_interval_minutes),
        "IR_KEY_SCOPE": config.key_scope,
        "IR_NETWORK_ACL_ISOLATION": "true" if config.network_acl_isolation else "false",
        "IR_EVIDENCE_LOCK_MODE": config.evidence_lock_mode.lower(),
        "IR_EVIDENCE_LOCK_DAYS": str(config.evidence_retention_days),
        "IR_CUSTODY_KEY_ARN": names.key_alias_arn(partition, config.evidence_region, forensics,
                                                  names.CUSTODY_KEY_ALIAS),
        "IR_CUSTODY_SIGNER_ROLE_ARN": names.role_arn(partition, forensics, names.SIGNER_ROLE_NAME),
        "IR_REGIONS": ",".join(config.estate_regions),
        "IR_FORENSICS_REGION": config.evidence_region,
        "IR_RESPONDER_ROLE_ARNS": ",".join(names.responder_role_arns(partition, config.security_account)),
        "IR_REMOVE_CONSOLE_ACCESS": "true" if config.remove_console_access else "false",
        "IR_CONTAINMENT_LEVELS": config.containment_levels,
        "IR_TRAIL_DATABASE": config.athena_database,
        "IR_TRAIL_TABLE": config.athena_table,
        "IR_TRAIL_WORKGROUP": config.athena_workgroup,
        "IR_TRAIL_DATE_PARTITION": config.athena_date_partition,
        "IR_TRAIL_EVENT_DATA_STORE": config.lake_event_data_store,
    }
    missing, unknown = sorted(set(ENV) - set(env)), sorted(set(env) - set(ENV))
    if missing or unknown:
        raise MissingSetting(
            f"stacks/environment.py is out of line with responder.settings.ENV: no value for {missing}, "
            f"values for unknown names {unknown}")
    return env


def quarantine_policy_arn(config: Config, partition: str) -> str:
    return config.quarantine_policy_arn or f"arn:{partition}:iam::aws:policy/{DEFAULT_QUARANTINE_POLICY_NAME}"
