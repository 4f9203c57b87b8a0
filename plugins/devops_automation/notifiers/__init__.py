"""devops_automation notifiers."""
