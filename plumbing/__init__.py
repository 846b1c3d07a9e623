"""The MLflow plumbing. Its top level is the runtime every step uses: the CLI wrapper (cli), the run a
step logs into (tracking), liveness, faults, settings, names, parameter checks (params), the data source
(data), output files, dataset inputs and the Model Registry (registry). Three subpackages serve one
entry point each and never import each other: pipeline (main, tune), tuning (tune) and spark (predict).
It may import the domain (demand), never the steps or serving.
"""
