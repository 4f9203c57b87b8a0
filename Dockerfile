# devops-automation image: the official Airflow 3.3.2 image plus our pinned requirements.
# The Python minor version matches the one constraints.txt was resolved on (3.11).
FROM apache/airflow:3.3.2-python3.11
COPY --chown=airflow:root requirements.txt constraints.txt /opt/devops-automation/
RUN pip install --no-cache-dir -r /opt/devops-automation/requirements.txt -c /opt/devops-automation/constraints.txt \
 && pip check
