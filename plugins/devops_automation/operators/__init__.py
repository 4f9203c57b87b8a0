"""devops_automation operators."""
