"""``daily_project_metrics``: GitHub, Prometheus, SonarQube and CI figures per project per day; health scores."""
