"""The DevOps view inside Airflow: pages and a read API over the results store.

Shared by the plugin ``plugins/devops_automation_webui.py`` (a FastAPI app in the Airflow API server and its
``external_views``), never by a workflow, and importing none:

* :mod:`.queries`: the read functions over :class:`~devops_automation.store.ResultsStore` (SQLAlchemy
  Core, no Airflow): failures, CI analytics, runs, flaky jobs, red branches, metrics, health, alerts,
  reports, and the new rows the event stream sends;
* :mod:`.auth`: who is asking (Airflow's own auth manager and JWT) and which DAGs' data they may read;
* :mod:`.deps`: the results store of the ``devops_results_db`` connection in the API server;
* :mod:`.archive`: archived report files (``ObjectStoragePath``);
* :mod:`.events`: one poller per process fanning new failures and alerts out as Server-Sent Events;
* :mod:`.api`: ``create_app()``, the versioned JSON API (``/api/v1/...``) with its OpenAPI document;
* :mod:`.pages`: ``create_view_app()``, the API plus the server-rendered pages (``/ui/...``), their
  charts and static files, and error pages; :mod:`.templating` (Jinja2, filters, assets),
  :mod:`.page_charts` (the pages' charts, drawn by :mod:`devops_automation.charts`), :mod:`.airflow_links`
  (links to Airflow's run and task instance pages).
"""
