"""Predictive features: risk scores, drift forecasts with intervals, capacity planning and cost estimates.

Reads what scoring wrote (Parquet partitions); nothing here imports Dagster. Data flows
inventory -> baselines -> scoring -> predict -> remediation / ai.
"""
