"""The domain: bike-sharing demand as pure functions on frames and arrays.

The hour.csv contract and where the data comes from, the split, features, models, metrics, plots, the
report and the promotion rules. Nothing here imports mlflow or the packages above it (plumbing, serving,
steps); tests/test_layers.py checks that.
"""
