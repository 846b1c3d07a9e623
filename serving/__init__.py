"""The model as MLflow loads and serves it. It depends only on the domain (demand) and MLflow's
exceptions, so `mlflow models serve` imports no pipeline code; the logged model carries this package
and demand as its code.
"""
