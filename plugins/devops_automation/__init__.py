"""devops-automation: Airflow 3 hooks, operators, sensors, triggers, notifiers and domain logic."""
