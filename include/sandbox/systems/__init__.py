"""One module per external system (a package for the big ones: ``devlake/``, ``gitlab/``, whose
``__init__`` re-exports these names from its ``api.py``). Each module defines:

``NAME``            the system name ("devlake"), also the fault-rule ``system`` value
``PREFIX``          where its real-API routes are mounted ("/devlake")
``make_state(seed, sandbox)``  fresh deterministic state (seeded data); ``sandbox.clock.now()`` is time
``router``          fastapi.APIRouter with the real API's routes (paths exactly as ../shared/api/ says)
``control``         fastapi.APIRouter with test controls, mounted at ``/_sandbox/<NAME>``
``error_response(status, message, retry_after)``  the system's own error body for injected faults

Route handlers reach their state with ``request.app.state.sandbox.state(NAME)``.
"""

SYSTEMS = ["devlake", "gitlab", "github", "slack", "telegram", "openai", "prometheus", "sonarqube"]
