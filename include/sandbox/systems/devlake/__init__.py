"""DevLake sandbox (``../shared/api/devlake.md``): the system module ``app.py`` loads as ``devlake``.

* ``api.py``: the HTTP routes at ``/devlake`` and the controls at ``/_sandbox/devlake`` (documented there);
* ``state.py``: connections, scopes, projects, blueprints and the simulated pipelines, free of HTTP;
* ``remote.py``: what each data-source plugin "sees" on its tool (scope models, page tokens, remote trees).
"""

from include.sandbox.systems.devlake.api import NAME, PREFIX, control, error_response, make_state, router

__all__ = ["NAME", "PREFIX", "control", "error_response", "make_state", "router"]
