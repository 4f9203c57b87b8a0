"""Connection arguments of the demo's SQLite metadata database (``[database] sql_alchemy_connect_args``,
set by ``demo.py``).

With ``airflow standalone`` the scheduler, DAG processor, triggerer, API server and every task write
to one SQLite file (in WAL mode). ``sqlite3`` gives up on a lock after 5 s, and the scheduler stops
on that error in its loop ("database is locked"): in the demo this happened minutes after the start,
with the first runs of every DAG and the report's backfills running at once on two cores. A writer
waits up to a minute here instead.
"""

CONNECT_ARGS = {"timeout": 60}
