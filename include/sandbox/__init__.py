"""Local stand-ins for the external APIs (DevLake, GitLab, GitHub, Slack, Telegram, OpenAI, Prometheus,
SonarQube). Start with ``python -m include.sandbox --port 8900`` from the project root."""
