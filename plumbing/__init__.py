"""The MLflow plumbing. Its top level is the runtime every step uses: the CLI wrapper (cli), the run a
step logs into (tracking), reading what earlier steps logged (artifacts), liveness, faults, settings,
names, parameter checks (params, hyperparameters, plan), the data source (data_source), the project's
code (code), output files, dataset inputs and the Model Registry (registry). Three subpackages never
import each other: pipeline (running and reusing steps: main, tune), tuning (tune) and spark (predict).
It may import the domain (demand), never the steps or serving.
"""
