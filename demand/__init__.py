"""The domain: bike-sharing demand as pure functions on frames and arrays.

The hour.csv contract, from a download's bytes to the validated table (hourly), the split, features,
models, metrics, plots, the report, the promotion rules and the tuning folds. It opens no file and no URL
(plumbing/data_source.py does). Nothing here imports mlflow or the packages above it (plumbing, serving,
steps); tests/test_layers.py checks that.
"""
