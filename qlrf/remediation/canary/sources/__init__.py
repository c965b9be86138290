"""Metric sources for canary analysis, one module per platform (see qlrf.remediation.canary.metrics)."""
