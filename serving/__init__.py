"""The model as MLflow loads and serves it. It depends only on the domain (demand) and MLflow's
exceptions, so `mlflow models serve` imports no pipeline code. The logged model carries model.py and
the domain modules it runs (SCORING_MODULES), nothing else.
"""
