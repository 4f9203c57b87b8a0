"""``ci_run_action``: re-run, re-run failed jobs, cancel, or redeploy a previous version on GitHub Actions and
GitLab CI from the Airflow UI, with an audit trail (``plan`` guards and plans, ``messages`` texts,
``operators``)."""
