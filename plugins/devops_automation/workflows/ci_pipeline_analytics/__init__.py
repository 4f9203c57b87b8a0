"""``ci_pipeline_analytics``: GitHub Actions runs and GitLab pipelines per data interval (every attempt),
normalised into the results store, the figures of the shared CI definitions, and alert rules."""
