"""``devlake_project_setup``: every repository becomes a DevLake project (planner + operators)."""
