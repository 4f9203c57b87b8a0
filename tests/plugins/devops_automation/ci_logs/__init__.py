"""Tests of the failure-log package (excerpt, redaction, classification, LLM analysis, CLI)."""
