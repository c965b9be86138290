"""The Dagster code location: definitions, partitions, jobs and schedules."""
