"""tune: search a model's hyperparameters with Optuna, then train, evaluate and register the best.

Parameters: those of main (data, split, test_days, model, model_name, force), and
    trials: finished trials the study should hold; workers: worker processes on this machine;
    storage: empty (a SQLite file of this run) or a database URL that workers on other machines share,
        e.g. postgresql://user@host/optuna; study: empty (a new study) or the name of one to create or join;
    <hyperparameter>: `-P <name>=<value>` fixes it and takes it out of the search.
Each trial is a nested run with its hyperparameters as params and `cv_<score>` as its metric: time-ordered
cross-validation on the training rows only (demand/tuning.py). The best trial's values are logged as
best_params.yaml; train, evaluate and register then run with them as nested runs, exactly as in main.
"""

from __future__ import annotations

import dataclasses
import tempfile
from datetime import datetime
from pathlib import Path

import mlflow
import yaml

from demand.errors import PipelineError, redacted
from demand.tuning import check_search_space
from plumbing import settings
from plumbing.artifacts import read_features
from plumbing.cli import argument_parser, run_cli
from plumbing.hyperparameters import parse_overrides
from plumbing.names import BEST_PARAMS_ARTIFACT, TRAIN_FILE
from plumbing.params import parse_positive_int
from plumbing.pipeline.runner import PipelineResult, locked_runner, summary
from plumbing.plan import Plan, make_plan
from plumbing.tracking import step_run
from plumbing.tuning.pool import run_workers, study_summary
from plumbing.tuning.study import Search, parse_storage, parse_study_name, search_digest
from steps.main import prepare_features, train_to_registry

MAX_WORKERS = 64


def tune(
    plan: Plan, *, trials: int, workers: int, storage: str, study: str, fixed: set[str]
) -> tuple[PipelineResult, list[str]]:
    """The search and the pipeline that follows it, under one tune run."""
    seed, options = settings.config()["seed"], settings.split_options(plan.split)
    space = {k: v for k, v in settings.config()["tune"]["search"][plan.model].items() if k not in fixed}
    check_search_space(plan.model, space, plan.hyperparameters)
    with step_run("tune") as parent, tempfile.TemporaryDirectory() as scratch:
        run_id, experiment_id = parent.info.run_id, parent.info.experiment_id
        with locked_runner(parent, plan.force) as runner:
            featurized = prepare_features(runner, plan)
        train_path = Path(scratch) / TRAIN_FILE
        read_features(featurized.outputs["features"]).train.to_parquet(train_path)
        facts = {"model": plan.model, "split": plan.split, "features": featurized.digest}
        facts["search"] = search_digest(space, plan.hyperparameters)
        search = Search(
            storage=storage or f"sqlite:///{Path(scratch) / 'optuna.db'}",
            study=study or f"tune-{run_id}",
            budget=trials,
            facts=facts | {"score": options["score"], "target": options["target"]},
            base=plan.hyperparameters,
            space=space,
            train_path=str(train_path),
            experiment_id=experiment_id,
            parent_run_id=run_id,
            tracking_uri=mlflow.get_tracking_uri(),
        )
        # trials and workers under their own names: mlflow run has logged -P values as typed (e.g. "040").
        about = {"study_name": search.study, "study_storage": redacted(search.storage)}
        about |= {"trials_budget": trials, "worker_processes": workers, "search_space": yaml.safe_dump(space)}
        mlflow.log_params(search.facts | about)
        started = datetime.now()
        found = study_summary(*run_workers(search, workers, seed), search=search, started=started)
        mlflow.log_metrics(found.metrics)
        mlflow.log_text(yaml.safe_dump(found.best_params_file(search), sort_keys=False), BEST_PARAMS_ARTIFACT)
        best = dataclasses.replace(plan, hyperparameters=plan.hyperparameters | found.best.params)
        with locked_runner(parent, plan.force) as finishing:
            evaluated, registered = train_to_registry(finishing, best, featurized)
    steps, failed = runner.records + finishing.records, runner.failed + finishing.failed
    result = PipelineResult(run_id, experiment_id, steps, evaluated.metrics, registered.summary, failed)
    return result, found.lines(search)


def main(argv: list[str] | None = None) -> None:
    defaults = settings.parameter_defaults("tune")
    parser = argument_parser(__doc__)
    for name, default in defaults.items():
        parser.add_argument(f"--{name}", default=default)
    args, rest = parser.parse_known_args(argv)

    def work() -> None:
        trials = parse_positive_int("trials", args.trials)
        workers = parse_positive_int("workers", args.workers)
        if workers > MAX_WORKERS:
            raise PipelineError(
                f"parameter workers={workers} is more than {MAX_WORKERS}; add machines instead"
            )
        storage = parse_storage(args.storage) if args.storage else ""
        study = parse_study_name(args.study) if args.study else ""
        overrides = parse_overrides(rest)
        pipeline = {k: v for k, v in vars(args).items() if k not in {"trials", "workers", "storage", "study"}}
        plan = make_plan(overrides=overrides, **pipeline)
        result, lines = tune(
            plan, trials=trials, workers=workers, storage=storage, study=study, fixed=set(overrides)
        )
        print("\n".join([*lines, summary(result)]))  # the CLI's own output

    run_cli(work)


if __name__ == "__main__":
    main()
