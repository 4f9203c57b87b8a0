"""One package per DAG: everything that only that DAG uses (its operators, planner, message
rendering, store queries, intake). A workflow imports the shared parts (hooks, triggers, sensors,
notifiers, store, ci_logs) and never another workflow; nothing shared imports a workflow."""
