"""The ``weekly_report`` and ``monthly_report`` DAGs: figures, charts and delivery of a period's report."""
