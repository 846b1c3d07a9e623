"""The team stack under load and faults: eight pipelines at once, a restart of the tracking server and an
outage of the object store mid-run; and, last, no secret anywhere in what every stack test saw."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg2
import pytest

from scripts import stack_parts
from tests.e2e.stack import (
    POSTGRES,
    Stack,
    finished_pipeline,
    stack_command,
    start_pipeline,
    wait_for_running_train,
)
from tests.helpers import PROJECT_DIR, cli_environment, module_command


def test_eight_pipelines_at_once_leave_the_registry_consistent(stack: Stack, small_csv: Path) -> None:
    """Eight pipelines in eight experiments, all registering to one model name: the server and the registry
    under load, with fast models (the fit is not what is tested)."""
    name = "stack-eight"
    models = [["--model", "ridge", "--alpha", str(alpha)] for alpha in (0.1, 1, 10, 100)]
    models += [
        ["--model", "xgb", "--n_estimators", str(trees), "--bagged_seeds", "1"]
        for trees in (40, 80, 160, 320)
    ]
    environment = cli_environment(stack.url) | stack.pipeline
    started = time.monotonic()
    pipelines = [
        subprocess.Popen(
            module_command(small_csv, "--model_name", name, *model),
            cwd=PROJECT_DIR,
            env=environment | {"MLFLOW_EXPERIMENT_NAME": f"stack-eight-{number}"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for number, model in enumerate(models)
    ]
    outputs = [pipeline.communicate(timeout=900) for pipeline in pipelines]
    seconds = time.monotonic() - started
    stack.outputs.extend(text for pair in outputs for text in pair)
    assert [pipeline.returncode for pipeline in pipelines] == [0] * 8, [err[-1500:] for _, err in outputs]
    client = stack.client()
    versions = client.search_model_versions(f"name = '{name}'")
    registered = [
        line for out, _ in outputs for line in out.splitlines() if line.startswith("Registry: registered")
    ]
    assert len(versions) == len(registered) >= 6, (
        "the gate may refuse the weakest; the rest each get one version"
    )
    digests = [version.tags["model_digest"] for version in versions]
    assert len(set(digests)) == len(digests), "no model is registered twice"
    for version in versions:
        assert {"train_run_id", "data_sha256", "data_source", "train_days", "promotion"} <= set(version.tags)
    champions = [v for v in versions if "champion" in client.get_model_version(name, v.version).aliases]
    assert len(champions) == 1
    runs = [
        run
        for experiment in client.search_experiments()
        for run in client.search_runs([experiment.experiment_id])
    ]
    assert "RUNNING" not in {run.info.status for run in runs}
    assert not [model for model in client.search_registered_models() if ".lock" in model.name], "no lock left"
    print(f"8 pipelines at once on the stack: {seconds:.1f} s, {len(versions)} versions")


def test_a_restart_of_the_tracking_server_mid_run_is_ridden_out(stack: Stack, small_csv: Path) -> None:
    experiment = "stack-restart"
    parameters = ("model=xgb", "n_estimators=3000", "bagged_seeds=1", "model_name=stack-restart")
    pipeline = start_pipeline(stack, small_csv, *parameters, env={"MLFLOW_EXPERIMENT_NAME": experiment})
    wait_for_running_train(stack.client(), experiment, pipeline)
    assert stack_parts.stop(stack.folder, "mlflow")
    time.sleep(20)  # down for a while, as a restart is; longer than the fit, so the pipeline meets it
    restarted = stack_command(stack.environment, "up")
    assert restarted.returncode == 0, restarted.stderr
    code, err = finished_pipeline(pipeline, stack)
    assert code == 0, err[-3000:]
    assert "Retrying" in err, "the pipeline met the stopped server and retried"
    client = stack.client()
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert {run.info.status for run in runs} == {"FINISHED"}


def test_an_object_store_outage_is_one_line_and_the_rerun_resumes(stack: Stack, small_csv: Path) -> None:
    experiment, name = "stack-outage", "stack-outage"
    in_experiment = {"MLFLOW_EXPERIMENT_NAME": experiment}
    first = start_pipeline(stack, small_csv, "model=ridge", f"model_name={name}", env=in_experiment)
    assert finished_pipeline(first, stack)[0] == 0
    client = stack.client()
    before = [(v.version, sorted(v.aliases)) for v in client.search_model_versions(f"name = '{name}'")]
    assert stack_parts.stop(stack.folder, "weed")
    try:
        one_retry = {
            "MLFLOW_EXPERIMENT_NAME": experiment,
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
        }  # a short test
        started = time.monotonic()
        failed = start_pipeline(
            stack, small_csv, "model=ridge", "alpha=2.0", f"model_name={name}", env=one_retry
        )
        code, err = finished_pipeline(failed, stack)
        took = time.monotonic() - started
    finally:
        assert stack_command(stack.environment, "up").returncode == 0
    assert code == 1
    errors = [line for line in err.splitlines() if " ERROR plumbing." in line]
    assert len(errors) == 1 and "could not reach its artifact store" in errors[0], err[-2000:]
    assert took < 60, f"{took:.0f} s: one retry budget in all, not one per call"
    print(f"object store outage: pipeline to its one-line error in {took:.1f} s")
    assert [
        (v.version, sorted(v.aliases)) for v in client.search_model_versions(f"name = '{name}'")
    ] == before
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert "RUNNING" not in {run.info.status for run in runs}

    resumed = start_pipeline(
        stack, small_csv, "model=ridge", "alpha=2.0", f"model_name={name}", env=in_experiment
    )
    code, err = finished_pipeline(resumed, stack)
    assert code == 0, err[-3000:]


@contextmanager
def database_down(database: str) -> Iterator[None]:
    """The tracking server's database refuses every connection, as a database that went down does."""
    connection = psycopg2.connect(POSTGRES)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,)
            )
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        connection.close()


def test_a_database_outage_is_named_in_one_line_after_one_retry_budget(stack: Stack, small_csv: Path) -> None:
    """The server answers 503 while its database is down: the pipeline says so (not "stopped answering"),
    and once one call has spent its retries (4, 2 s to 16 s apart: 30 s), marking runs FAILED, the
    heartbeat and the lock release try once each. A rerun once the database is back leaves nothing RUNNING."""
    experiment, name = "stack-db-outage", "stack-db-outage"
    slow = ("model=xgb", "n_estimators=3000", "bagged_seeds=1", f"model_name={name}")
    budget = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "4", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "2"}
    pipeline = start_pipeline(stack, small_csv, *slow, env={"MLFLOW_EXPERIMENT_NAME": experiment} | budget)
    wait_for_running_train(stack.client(), experiment, pipeline)
    with database_down(stack.environment["STACK_DB"]):
        started = time.monotonic()
        code, err = finished_pipeline(pipeline, stack)
        took = time.monotonic() - started
    errors = [line for line in err.splitlines() if " ERROR " in line]
    assert code == 1 and len(errors) == 1, err[-3000:]
    assert "answers but fails (HTTP 503): its database is down or failing" in errors[0], errors[0]
    assert took < 75, (
        f"{took:.0f} s: one retry budget (30 s) and the rest of the fit (under 20 s), not one per call"
    )
    print(f"database outage to its one-line error: {took:.1f} s")

    rerun = start_pipeline(
        stack, small_csv, "model=ridge", f"model_name={name}", env={"MLFLOW_EXPERIMENT_NAME": experiment}
    )
    code, err = finished_pipeline(rerun, stack)
    assert code == 0, err[-3000:]
    client = stack.client()
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert "RUNNING" not in {run.info.status for run in runs}


def test_data_and_logins_survive_a_down_up_cycle(stack: Stack) -> None:
    client = stack.client()
    experiments = sorted(experiment.name for experiment in client.search_experiments())
    models = sorted(model.name for model in client.search_registered_models())
    assert models, "earlier stack tests registered models"
    stopped = stack_command(stack.environment, "down")
    assert stopped.returncode == 0 and "Stopped mlflow, weed" in stopped.stdout
    started = stack_command(stack.environment, "up")
    assert started.returncode == 0, started.stderr
    stack.outputs.extend([stopped.stdout, stopped.stderr, started.stdout, started.stderr])
    client = stack.client()  # the same logins
    assert sorted(experiment.name for experiment in client.search_experiments()) == experiments
    assert sorted(model.name for model in client.search_registered_models()) == models


def test_no_secret_appears_in_any_output_param_tag_or_artifact(stack: Stack) -> None:
    """Runs last of the stack tests: it searches what every one before it saw, the stack's logs, every
    param and tag (runs and model versions) and every artifact in the bucket."""
    if len(stack.outputs) < 20:
        pytest.skip("searches what the other stack tests saw: run it with them")
    client = stack.client()
    logged = [
        str(run.data.params) + str(run.data.tags)
        for experiment in client.search_experiments()
        for run in client.search_runs([experiment.experiment_id])
    ]
    logged += [str(version.tags) for version in client.search_model_versions()]
    logs = [path.read_text(errors="replace") for path in stack.folder.glob("*.log")]
    s3 = stack.s3()
    bucket = stack.admin["STACK_S3_BUCKET"]
    keys = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for item in page.get("Contents", [])
    ]
    artifacts = [
        s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode(errors="replace") for key in keys
    ]
    assert len(artifacts) > 50, "the stack tests logged their artifacts here"
    for secret in stack.secrets():
        assert not [text for text in stack.outputs + logged + logs + artifacts if secret in text]
