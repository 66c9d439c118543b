"""Task CollectEvidence (being built: see issue 4)."""


def handler(event: dict, context: object) -> dict:
    return {"status": "failed", "done": True, "error": "NotAvailable", "entries": [],
            "message": "evidence collection is not available in this build"}
