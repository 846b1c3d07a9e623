"""The team stack for real: `scripts/stack.py up` starts `mlflow server` with basic-auth on PostgreSQL and a
SeaweedFS S3 store on free ports; the pipeline, reruns, the registry, batch prediction, serving and the
scheduled rerun run against it; logins are enforced; and no secret ever shows up in what anything prints
or logs."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import psycopg2
import pytest
import requests
from mlflow import MlflowClient

from scripts import stack_parts
from tests.helpers import (
    PROJECT_DIR,
    VENV_BIN,
    actions,
    cli_environment,
    dash_p,
    free_port,
    wait_until_healthy,
)

POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
MLFLOW_RUN = (str(VENV_BIN / "mlflow"), "run", str(PROJECT_DIR), "--env-manager", "local")


@dataclass(frozen=True)
class Stack:
    folder: Path
    pipeline: dict[str, str]  # the contents of $STACK_DIR/env
    admin: dict[str, str]  # the contents of $STACK_DIR/admin.env
    environment: dict[str, str]  # what `scripts/stack.py` ran with
    outputs: list[str]  # everything the tests saw printed, to search for secrets

    @property
    def url(self) -> str:
        return self.pipeline["MLFLOW_TRACKING_URI"]

    def secrets(self) -> list[str]:
        return [self.pipeline["MLFLOW_TRACKING_PASSWORD"], self.admin["MLFLOW_TRACKING_PASSWORD"],
                self.admin["AWS_SECRET_ACCESS_KEY"]]  # fmt: skip

    def run(self, *arguments: str, name: str = "mlflow-run") -> subprocess.CompletedProcess:
        """A command against the stack as the pipeline user; its output is kept for the secrets check."""
        environment = cli_environment(self.url) | self.pipeline
        result = subprocess.run(
            list(arguments),
            cwd=PROJECT_DIR,
            env=environment,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        self.outputs.extend([result.stdout, result.stderr])
        return result

    def client(self, who: str = "admin") -> MlflowClient:
        os.environ["MLFLOW_TRACKING_USERNAME"] = getattr(self, who)["MLFLOW_TRACKING_USERNAME"]
        os.environ["MLFLOW_TRACKING_PASSWORD"] = getattr(self, who)["MLFLOW_TRACKING_PASSWORD"]
        return MlflowClient(self.url)


def read_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line)


def stack_command(environment: dict[str, str], command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scripts.stack", command],
        cwd=PROJECT_DIR, env=environment, capture_output=True, text=True, timeout=400, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("stack") / ".stack"
    database = f"mlflow_test_{secrets.token_hex(4)}"
    environment = os.environ | {"STACK_DIR": str(folder), "STACK_DB": database}
    started = stack_command(environment, "up")
    assert started.returncode == 0, started.stdout + started.stderr
    found = Stack(folder, read_env(folder / "env"), read_env(folder / "admin.env"), environment,
                  [started.stdout, started.stderr])  # fmt: skip
    try:
        yield found
    finally:
        stack_command(environment, "down")
        for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            os.environ.pop(name, None)
        connection = psycopg2.connect(POSTGRES)
        connection.autocommit = True
        with connection.cursor() as cursor:
            for name in (database, f"{database}_auth"):
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.close()


def pipeline_arguments(data: Path, experiment: str, model_name: str, *extra: str) -> list[str]:
    parameters = dash_p(f"data={data}", "test_days=7", f"model_name={model_name}")
    return [*MLFLOW_RUN, "--experiment-name", experiment, *parameters, *extra]


def test_a_second_up_changes_nothing_and_the_login_files_are_private(stack: Stack) -> None:
    again = stack_command(stack.environment, "up")
    assert again.returncode == 0 and "already up" in again.stdout
    stack.outputs.extend([again.stdout, again.stderr])
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
    s3 = boto3.client(
        "s3", endpoint_url=stack.admin["MLFLOW_S3_ENDPOINT_URL"], region_name="us-east-1",
        aws_access_key_id=stack.admin["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=stack.admin["AWS_SECRET_ACCESS_KEY"],
    )  # fmt: skip
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
    for model in (["-P", "model=ridge"], ["-P", "model=xgb", "-P", "n_estimators=200"]):
        finished = stack.run(*pipeline_arguments(small_csv, "stack-registry", name, *model))
        assert finished.returncode == 0, finished.stderr[-3000:]
    assert "as @champion (was version 1): clearly better" in finished.stdout
    client = stack.client()
    assert client.get_model_version_by_alias(name, "champion").version == "2"

    output = tmp_path / "predictions.csv"
    parameters = dash_p(f"input={small_csv}", f"output={output}", f"model_name={name}")
    predicted = stack.run(*MLFLOW_RUN, "-e", "predict", *parameters)
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    assert len(output.read_text().splitlines()) == len(small_csv.read_text().splitlines())

    port = free_port()
    log = tmp_path / "serve.log"
    command = [str(VENV_BIN / "mlflow"), "models", "serve", "-m", f"models:/{name}@champion", "--env-manager",
               "local", "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    with log.open("w") as written:
        server = subprocess.Popen(command, env=cli_environment(stack.url) | stack.pipeline, stdout=written,
                                  stderr=subprocess.STDOUT, cwd=tmp_path)  # fmt: skip
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}/ping", server, log)
        records = [line.split(",") for line in small_csv.read_text().splitlines()[:3]]
        body = json.dumps({"dataframe_split": {"columns": records[0], "data": records[1:]}}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                         headers={"Content-Type": "application/json"})  # fmt: skip
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


def test_eight_pipelines_at_once_leave_the_registry_consistent(stack: Stack, small_csv: Path) -> None:
    """Eight pipelines in eight experiments, all registering to one model name: the server and the registry
    under load, with fast models (the fit is not what is tested)."""
    name = "stack-eight"
    models = [["--model", "ridge", "--alpha", str(alpha)] for alpha in (0.1, 1, 10, 100)]
    models += [["--model", "xgb", "--n_estimators", str(trees)] for trees in (40, 80, 160, 320)]
    environment = cli_environment(stack.url) | stack.pipeline
    started = time.monotonic()
    pipelines = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "steps.main",
                "--data",
                str(small_csv),
                "--test_days",
                "7",
                "--model_name",
                name,
                *model,
            ],
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
    assert not [model for model in client.search_registered_models() if model.name.endswith(".lock")]
    print(f"8 pipelines at once on the stack: {seconds:.1f} s, {len(versions)} versions")


def start_pipeline(
    stack: Stack, data: Path, *parameters: str, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """The scheduled rerun against the stack, in the background."""
    return subprocess.Popen(
        [str(PROJECT_DIR / "scripts" / "rerun"), *dash_p(f"data={data}", "test_days=7", *parameters)],
        cwd=PROJECT_DIR, env=cli_environment(stack.url) | stack.pipeline | (env or {}),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_for_running_train(client: MlflowClient, experiment: str, pipeline: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and pipeline.poll() is None:
        found = client.get_experiment_by_name(experiment)
        if found and client.search_runs([found.experiment_id], "tags.`mlflow.project.entryPoint` = 'train' "
                                        "AND attributes.status = 'RUNNING'"):  # fmt: skip
            return
        time.sleep(0.5)
    raise AssertionError(
        f"train never started: {pipeline.communicate()[1][-2000:] if pipeline.poll() else ''}"
    )


def finished_pipeline(process: subprocess.Popen, stack: Stack) -> tuple[int, str]:
    out, err = process.communicate(timeout=900)
    stack.outputs.extend([out, err])
    return process.returncode, err


def test_a_restart_of_the_tracking_server_mid_run_is_ridden_out(stack: Stack, small_csv: Path) -> None:
    experiment = "stack-restart"
    pipeline = start_pipeline(stack, small_csv, "model=xgb", "n_estimators=3000", "model_name=stack-restart",
                              env={"MLFLOW_EXPERIMENT_NAME": experiment})  # fmt: skip
    wait_for_running_train(stack.client(), experiment, pipeline)
    assert stack_parts.stop(stack.folder, "mlflow")
    time.sleep(5)  # down for a while, as a restart is
    restarted = stack_command(stack.environment, "up")
    assert restarted.returncode == 0, restarted.stderr
    code, err = finished_pipeline(pipeline, stack)
    assert code == 0, err[-3000:]
    client = stack.client()
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert {run.info.status for run in runs} == {"FINISHED"}


def test_an_object_store_outage_is_one_line_and_the_rerun_resumes(stack: Stack, small_csv: Path) -> None:
    experiment, name = "stack-outage", "stack-outage"
    first = start_pipeline(stack, small_csv, "model=ridge", f"model_name={name}",
                           env={"MLFLOW_EXPERIMENT_NAME": experiment})  # fmt: skip
    assert finished_pipeline(first, stack)[0] == 0
    client = stack.client()
    before = [(v.version, sorted(v.aliases)) for v in client.search_model_versions(f"name = '{name}'")]
    assert stack_parts.stop(stack.folder, "weed")
    try:
        one_retry = {
            "MLFLOW_EXPERIMENT_NAME": experiment,
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
        }  # a short test
        failed = start_pipeline(
            stack, small_csv, "model=ridge", "alpha=2.0", f"model_name={name}", env=one_retry
        )
        code, err = finished_pipeline(failed, stack)
    finally:
        assert stack_command(stack.environment, "up").returncode == 0
    assert code == 1
    errors = [line for line in err.splitlines() if " ERROR plumbing." in line]
    assert len(errors) == 1 and "could not reach its artifact store" in errors[0], err[-2000:]
    assert [
        (v.version, sorted(v.aliases)) for v in client.search_model_versions(f"name = '{name}'")
    ] == before
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert "RUNNING" not in {run.info.status for run in runs}

    resumed = start_pipeline(stack, small_csv, "model=ridge", "alpha=2.0", f"model_name={name}",
                             env={"MLFLOW_EXPERIMENT_NAME": experiment})  # fmt: skip
    code, err = finished_pipeline(resumed, stack)
    assert code == 0, err[-3000:]


def test_no_secret_appears_in_any_output_param_or_tag(stack: Stack) -> None:
    """Runs last in this module: it searches what every test before it saw, and the whole store."""
    client = stack.client()
    logged = [str(run.data.params) + str(run.data.tags) for experiment in client.search_experiments()
              for run in client.search_runs([experiment.experiment_id])]  # fmt: skip
    logs = [path.read_text(errors="replace") for path in stack.folder.glob("*.log")]
    for secret in stack.secrets():
        assert not [text for text in stack.outputs + logged + logs if secret in text]
