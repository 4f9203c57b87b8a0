"""devops_automation sensors."""
