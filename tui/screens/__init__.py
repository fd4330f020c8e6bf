"""Screens of the triage view: the main triage screen, the paste view, help and prompts."""
