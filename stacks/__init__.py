"""CDK stacks and constructs of the GuardDuty auto-responder (one stack per deployment role)."""
