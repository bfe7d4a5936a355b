"""The recorder: every stage wired together for a take (ingest -> timeline -> store -> live)."""
