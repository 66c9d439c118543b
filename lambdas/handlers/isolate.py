"""Task IsolateInstance (being built: see issue 3)."""


def handler(event: dict, context: object) -> dict:
    return {"status": "failed", "error": "NotAvailable", "entries": [],
            "message": "instance isolation is not available in this build"}
