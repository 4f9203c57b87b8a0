"""Hooks: one per external system, each wrapping an Airflow connection (config in ``__init__``,
connection looked up lazily on first use)."""
