"""GitLab sandbox (REST API v4, ``../shared/api/gitlab.md``): the system module ``app.py`` loads as ``gitlab``.

* ``api.py``: the HTTP routes at ``/gitlab/api/v4`` and the controls at ``/_sandbox/gitlab`` (documented there);
* ``state.py``: projects, pipelines, jobs, deployments and job logs (traces) with the triage seed, free of HTTP;
* ``history.py``: weeks of CI history in the group ``payments`` for ``ci_pipeline_analytics`` (seeded second);
* ``messages.py``: what GitLab sends about a pipeline (webhook deliveries, notification e-mails).
"""

from include.sandbox.systems.gitlab.api import NAME, PREFIX, control, error_response, make_state, router

__all__ = ["NAME", "PREFIX", "control", "error_response", "make_state", "router"]
