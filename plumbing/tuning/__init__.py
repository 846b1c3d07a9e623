"""Hyperparameter search for `tune`: the Optuna study that workers share (study), a worker's loop of
trials (worker), and the pool of worker processes with its progress line and what it found (pool)."""
