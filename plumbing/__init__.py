"""The MLflow plumbing: the run a step logs into, the step runner, the content cache, locks, liveness,
parameter checks, settings and the Model Registry. It may import the domain (demand), never the steps.
"""
