"""Domain package of the GuardDuty auto-responder: decisions in plain functions, AWS calls in `responder.aws`."""
