"""Threshold rules and alerts: built in the alerts issue."""
