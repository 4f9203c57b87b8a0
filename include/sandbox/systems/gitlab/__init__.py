"""GitLab sandbox (REST API v4, ``../shared/api/gitlab.md``): the system module ``app.py`` loads as ``gitlab``.

* ``api.py``: the HTTP routes at ``/gitlab/api/v4`` and the controls at ``/_sandbox/gitlab`` (documented there);
* ``state.py``: projects, pipelines, jobs and job logs (traces) with their seed, free of HTTP;
* ``messages.py``: what GitLab sends about a pipeline (webhook deliveries, notification e-mails).
"""

from include.sandbox.systems.gitlab.api import NAME, PREFIX, control, error_response, make_state, router

__all__ = ["NAME", "PREFIX", "control", "error_response", "make_state", "router"]
