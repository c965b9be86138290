"""Scoring: drift, compliance and DR readiness per VM and per site, trends and the fleet report
(DuckDB over Parquet, warehouse partition in, warehouse partition out)."""
