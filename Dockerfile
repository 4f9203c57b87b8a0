# devops-automation image: the official Airflow 3.3.2 image plus our pinned requirements and this
# package (its provider metadata gives the connection form our types: DevLake, GitLab, IMAP mailbox, LLM).
# The Python minor version matches the one constraints.txt was resolved on (3.11).
FROM apache/airflow:3.3.2-python3.11
COPY --chown=airflow:root requirements.txt constraints.txt /opt/devops-automation/
RUN pip install --no-cache-dir -r /opt/devops-automation/requirements.txt -c /opt/devops-automation/constraints.txt \
 && pip check
# The package is installed editable from Airflow's plugins folder, so there is one copy of the code:
# the image's, or the ./plugins that docker-compose.yaml mounts over it (no stale site-packages copy
# shadowing the mounted one). --no-deps: the pins above are the tested set.
COPY --chown=airflow:root pyproject.toml /opt/airflow/
COPY --chown=airflow:root plugins /opt/airflow/plugins
RUN pip install --no-cache-dir --no-deps -e /opt/airflow \
 && pip check \
 && python -c "from importlib.metadata import entry_points; assert any(e.dist.name == 'devops-automation' for e in entry_points(group='apache_airflow_provider'))"
