"""Hourly bike-rental demand pipeline: one module per MLflow entry point plus small shared helpers."""
