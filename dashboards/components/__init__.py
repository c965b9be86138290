"""Widgets and helpers the dashboard pages share."""
