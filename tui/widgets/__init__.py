"""Reusable widgets of the triage view."""
