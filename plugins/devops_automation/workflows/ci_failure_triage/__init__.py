"""``ci_failure_triage``: GitLab pipeline failures from e-mail and webhooks, analysed, stored and
notified (intake, mail and webhook parsing, store queries, messages, operators)."""
