"""The team stack for real: `scripts/stack.py up` starts `mlflow server` with basic-auth on PostgreSQL and a
SeaweedFS S3 store on free ports; the pipeline, reruns, the registry, batch prediction, serving and the
scheduled rerun run against it; and logins are enforced. (tests/e2e/test_stack_faults.py: load, faults,
and no secret in anything the stack tests saw.)"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import urllib.request
from pathlib import Path

import requests

from scripts import stack_parts
from tests.e2e.stack import Stack, pipeline_arguments, stack_command
from tests.helpers import (
    PROJECT_DIR,
    VENV_BIN,
    actions,
    cli_environment,
    dash_p,
    free_port,
    module_command,
    wait_until_healthy,
)


def test_a_second_up_changes_nothing_and_the_login_files_are_private(stack: Stack) -> None:
    again = stack_command(stack.environment, "up")
    assert again.returncode == 0 and "already up" in again.stdout
    elsewhere = stack_command(stack.environment | {"STACK_DB": "another_database"}, "up")
    assert elsewhere.returncode == 1 and "keeps its data at STACK_DB=mlflow_test_" in elsewhere.stderr
    stack.outputs.extend([again.stdout, again.stderr, elsewhere.stdout, elsewhere.stderr])
    for name in ("env", "admin.env", "state.json", "basic_auth.ini", "s3.json"):
        assert (stack.folder / name).stat().st_mode & 0o777 == 0o600, name
    assert set(stack.pipeline) == {
        "MLFLOW_TRACKING_URI",
        "MLFLOW_TRACKING_USERNAME",
        "MLFLOW_TRACKING_PASSWORD",
    }
    assert len(stack.admin["MLFLOW_TRACKING_PASSWORD"]) >= 12


def test_the_pipeline_runs_on_the_stack_its_artifacts_land_in_the_bucket_and_a_rerun_reuses_it(
    stack: Stack, small_csv: Path
) -> None:
    arguments = pipeline_arguments(small_csv, "stack-runs", "stack-model", "-P", "model=ridge")
    first = stack.run(*arguments)
    assert first.returncode == 0, first.stderr[-3000:]
    assert f"Look: {stack.url}" in first.stdout
    client = stack.client()
    experiment = client.get_experiment_by_name("stack-runs")
    runs = client.search_runs([experiment.experiment_id])
    assert {run.info.status for run in runs} == {"FINISHED"}
    s3 = stack.s3()
    listed = s3.list_objects_v2(Bucket=stack.admin["STACK_S3_BUCKET"], MaxKeys=1000).get("Contents", [])
    names = {Path(item["Key"]).name for item in listed}
    assert {"hour.parquet", "train.parquet", "test.parquet", "report.html", "model.skops", "MLmodel"} <= names

    second = stack.run(*arguments)
    assert second.returncode == 0, second.stderr[-3000:]
    parent = [
        run
        for run in client.search_runs([experiment.experiment_id])
        if "mlflow.parentRunId" not in run.data.tags
    ]
    newest = max(parent, key=lambda run: run.info.start_time)
    assert set(actions(client, newest.info.run_id).values()) == {"reused"}


def test_registry_predict_and_serving_on_the_stack(stack: Stack, small_csv: Path, tmp_path: Path) -> None:
    name = "stack-served"
    summaries = []
    in_experiment = {"MLFLOW_EXPERIMENT_NAME": "stack-registry"}
    for model in (
        ["--model", "ridge"],
        ["--model", "xgb", "--n_estimators", "200", "--bagged_seeds", "1"],
        ["--model", "ridge", "--alpha", "1000000"],
    ):  # `python -m steps.main`: the test above runs the pipeline through `mlflow run` on the stack
        finished = stack.run(*module_command(small_csv, "--model_name", name, *model), env=in_experiment)
        assert finished.returncode == 0, finished.stderr[-3000:]
        summaries.append(next(line for line in finished.stdout.splitlines() if line.startswith("Registry:")))
    assert "as @champion (was version 1): clearly better" in summaries[1]
    assert summaries[2].startswith("Registry: rejected, not registered: "), "the gate"
    client = stack.client()
    assert client.get_model_version_by_alias(name, "champion").version == "2"
    assert len(client.search_model_versions(f"name = '{name}'")) == 2

    output = tmp_path / "predictions.csv"
    parameters = ["--input", str(small_csv), "--output", str(output), "--model_name", name]
    predicted = stack.run(sys.executable, "-m", "steps.predict", *parameters)
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    assert len(output.read_text().splitlines()) == len(small_csv.read_text().splitlines())

    port = free_port()
    log = tmp_path / "serve.log"
    address = ["--host", "127.0.0.1", "--port", str(port)]
    serve = [str(VENV_BIN / "mlflow"), "models", "serve", "-m", f"models:/{name}@champion"]
    command = [*serve, "--env-manager", "local", *address]
    with log.open("w") as written:
        server = subprocess.Popen(
            command,
            env=cli_environment(stack.url) | stack.pipeline,
            stdout=written,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}/ping", server, log)
        records = [line.split(",") for line in small_csv.read_text().splitlines()[:3]]
        body = json.dumps({"dataframe_split": {"columns": records[0], "data": records[1:]}}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            assert len(json.loads(answer.read())["predictions"]) == 2
    finally:
        server.terminate()
        server.wait(timeout=30)
    stack.outputs.append(log.read_text())


def test_the_scheduled_rerun_runs_on_the_stack(stack: Stack, small_csv: Path) -> None:
    rerun = str(PROJECT_DIR / "scripts" / "rerun")
    finished = stack.run(
        rerun, *dash_p(f"data={small_csv}", "test_days=7", "model=ridge", "model_name=stack-rerun")
    )
    assert finished.returncode == 0, finished.stderr[-3000:]


def test_logins_are_enforced(stack: Stack) -> None:
    assert (
        requests.get(
            f"{stack.url}/api/2.0/mlflow/experiments/search", params={"max_results": 1}, timeout=30
        ).status_code
        == 401
    )
    admin = (stack.admin["MLFLOW_TRACKING_USERNAME"], stack.admin["MLFLOW_TRACKING_PASSWORD"])
    reader_password = secrets.token_urlsafe(18)
    user = {"username": "reader", "password": reader_password}
    created = requests.post(f"{stack.url}/api/2.0/mlflow/users/create", json=user, auth=admin, timeout=30)
    assert created.ok, created.text
    reader = ("reader", reader_password)
    model = stack.client().create_registered_model("stack-guarded").name
    listed = requests.get(
        f"{stack.url}/api/2.0/mlflow/registered-models/get", params={"name": model}, auth=reader, timeout=30
    )
    assert listed.status_code == 200, "READ is the default permission"
    for path, body in [
        ("registered-models/alias", {"name": model, "alias": "champion", "version": "1"}),
        ("model-versions/create", {"name": model, "source": "s3://elsewhere/model"}),
    ]:
        answer = requests.post(f"{stack.url}/api/2.0/mlflow/{path}", json=body, auth=reader, timeout=30)
        assert answer.status_code == 403, (path, answer.status_code, answer.text[:300])


def test_a_second_bucket_takes_writes(stack: Stack) -> None:
    """weed's default 8 volume slots fit one bucket (7 volumes each): a second failed every upload."""
    s3 = stack.s3()
    s3.create_bucket(Bucket="stack-second")
    s3.put_object(Bucket="stack-second", Key="a.txt", Body=b"second")
    assert s3.get_object(Bucket="stack-second", Key="a.txt")["Body"].read() == b"second"


def test_the_tracking_server_keeps_no_login_of_the_shell_that_started_it(stack: Stack) -> None:
    """`make stack` from a shell that sourced .stack/env: the server's environment holds no login."""
    assert stack_parts.stop(stack.folder, "mlflow")
    started = stack_command(stack.environment | stack.pipeline, "up")
    assert started.returncode == 0, started.stderr
    pid = int((stack.folder / "mlflow.pid").read_text().split()[0])
    environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert not [item for item in environment if item.startswith(b"MLFLOW_TRACKING_")]
    assert stack.pipeline["MLFLOW_TRACKING_PASSWORD"].encode() not in b"\0".join(environment)
