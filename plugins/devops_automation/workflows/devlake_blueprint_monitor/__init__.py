"""``devlake_blueprint_monitor``: start blueprints, watch pipelines, alert on failures (operators; the
watching itself is the shared DevLake sensor and trigger)."""
