"""CI figures over the results store (no Airflow): what ``ci_pipeline_analytics`` stores per day, and
what ``daily_project_metrics``, ``weekly_report`` and the DevOps view read for any window.

* :mod:`.figures`: every definition of ``ci-analytics-definitions.md`` §3-4 computed from run, job and
  deployment rows (pure);
* :mod:`.analytics`: the rows read from the store, :func:`~.analytics.window_summary` (any window and
  filter, with the previous window beside it) and the ``ci_daily`` rows.
"""
