"""Names shared between the steps and the plumbing: the experiment, steps, artifacts, and the tags of the
pipeline's own bookkeeping. A name used by one module only lives in that module (the registry's version
tags in plumbing/registry.py, tune's in plumbing/tuning/worker.py, predict's in steps/predict.py); metric
names are in demand/metrics.py."""

from mlflow.utils import mlflow_tags

EXPERIMENT_NAME = "bike-sharing-demand"
STEPS = ("ingest", "featurize", "train", "evaluate", "register")

# Artifacts, relative to the run that logs them.
TABLE_ARTIFACT = "data/hour.parquet"
FEATURES_DIR = "features"
TRAIN_FILE = "train.parquet"
TEST_FILE = "test.parquet"
FEATURES_DESCRIPTION_FILE = "features.json"
SPLIT_FILE = "split.json"  # in the features folder: {"split": ..., "test_days": ...}, read by train and tune
BEST_PARAMS_ARTIFACT = "best_params.yaml"  # on a tune run: the model and hyperparameters it found
MODEL_NAME = "model"
REPORT_ARTIFACT = "report.html"
PREDICTIONS_ARTIFACT = "predictions.parquet"
PLOTS_DIR = "plots"


# Dataset logged with mlflow.log_input.
DATASET_NAME = "bike-sharing-hourly"

# Tags.
ENTRY_POINT_TAG = mlflow_tags.MLFLOW_PROJECT_ENTRY_POINT
PARENT_RUN_TAG = mlflow_tags.MLFLOW_PARENT_RUN_ID

# Tags of the pipeline's own bookkeeping (plumbing/pipeline/keys.py, cache.py, lock.py, liveness.py).
CACHE_KEY_TAG = "pipeline.cache_key"
# The key again, in a tag's name: stores index tags by name, so the lookup never scans every run's key.
CACHE_INDEX_TAG_PREFIX = "pipeline.cache."
KEY_PARTS_TAG = "pipeline.key_parts"  # what went into the key, to say what changed
REUSED_FROM_TAG = "pipeline.reused_from"
OUTPUTS_TAG = "pipeline.outputs"  # JSON: name -> URI the next step reads
OUTPUT_DIGEST_TAG = "pipeline.output_digest"  # sha256 of what the step produced
HOST_TAG = "pipeline.host"
PID_TAG = "pipeline.pid"
PID_START_TAG = "pipeline.pid_start"  # when that process started: a reused pid is another process
SUMMARY_TAG = "pipeline.summary"  # one line: what the step decided, for the pipeline's summary
HEARTBEAT_TAG = "pipeline.heartbeat"  # unix seconds, refreshed while the pipeline runs
MARKED_FAILED_TAG = "pipeline.marked_failed_by"
OWNER_TAG = "pipeline.owner_run"  # on a lock: the pipeline run that holds it
HOLDS_LOCK_TAG = "pipeline.holds_lock"  # on that run: the lock it holds, which only its own login can write
LOCK_SUFFIX = ".lock"  # a lock is the registered model <experiment>.lock or registry.<model name>.lock
