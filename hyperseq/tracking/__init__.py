"""Tracking: where jobs and trials are recorded.

`store` (the `Store` interface and its registry by URI scheme), `mlflow_store` (the MLflow
backend), `tags` (the layout: tag keys), `recorder` (the Tune callback that writes each
trial's child run, from the driver), `writer` (the helper process that performs the writes,
in order) and `query` (jobs and best configurations as DataFrames). This package imports
nothing heavy; import the submodules.
"""
