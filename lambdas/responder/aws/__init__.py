"""One small adapter per AWS service; every boto3 call of the responder lives below this package."""
