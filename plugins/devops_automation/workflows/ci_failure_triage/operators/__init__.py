"""The operators of ``ci_failure_triage``: collect → analyse (mapped) → notify → archive."""
