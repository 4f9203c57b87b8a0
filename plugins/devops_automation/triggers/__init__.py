"""devops_automation triggers."""
