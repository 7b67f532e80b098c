"""Certify a search's result over seeds, and export the configuration that is best on average.

    python -m search.run ... --certify                   # at the end of a search
    python -m search.certify RUN_DIR [--top 3] [--seeds 3]  # on a finished run directory

The top configurations by the run's objective (the harness's ranking, runfiles.layout.rank_key:
every trial that neither diverged nor errored, by its best epoch's value, however it ended)
are re-trained with fresh seeds (the run's seed + 1, + 2, ...) for the epochs at which their
trial peaked, with their trial's learning-rate schedule (planned over the run's --max-epochs,
so that a retraining stopped at the peak learned at the rates its trial did), each keeping its
best epoch by the objective. The test
split is evaluated for every seed's model (they are certified), never to choose: the
configuration exported is the one with the best mean validation accuracy.

Then (unless --no-refit) that configuration is fitted once more with the same seeds on
train + validation, for the epochs its trial peaked at, as a final model is (KerasTuner's
"retrain on the full data" step): nothing is chosen on validation any more,
so every labelled review trains it. Those models' test accuracy, mean ± standard
deviation over seeds, is the headline; the model shipped is the refit of the seed with
the best validation accuracy in certification. Without the refit, that seed's own model
is shipped. Results go to DIR/certify.csv and summary.json ("certification"); their
compute is counted apart from the search's budget.

When the exported configuration has the linear part (ngram_buckets > 0), its network alone and
its linear part alone are trained too with the same seeds and epochs, and tested (unless
--no-ablation): what each part contributes. Every model tested keeps its test predictions in
DIR/predictions/ (runfiles.predictions).
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
import time

from runfiles import predictions
from runfiles.cli import ArgumentParser, UsageError, add_fields, fail, given_path
from runfiles.documents import (
    Ablation,
    Card,
    Certification,
    Certified,
    CertifiedConfig,
    CertifyRow,
    CrossValidation,
    Ensemble,
    Exported,
    Refit,
    RefitSeed,
    RunFacts,
    Summary,
)
from runfiles.layout import NO_TEST_SPLIT, OBJECTIVE, Objective, RunDir, quantity, rank_key
from runfiles.trials import lost_trials, read_trials
from search.config import CertifyConfig, check_folds
from search.console import say_test_claims
from search.export import evaluate_test, export_network
from search.retrain import Job, JobResult, keep_predictions, network_of, run_jobs, spread
from search.session import Session, follow_up
from search.space import DEEP, configs_from, model_config
from search.train import review_tokens


def candidates(run_dir: RunDir, top: int, objective: Objective) -> list[dict]:
    """The top `top` trials by `objective` (rank_key: completed or stopped early, not diverged or
    errored), best first; UsageError when no trial has a value, or the run's tables lack trials
    (`runfiles.trials.lost_trials`)."""
    if lost := lost_trials(run_dir):
        raise UsageError(lost)
    ranked = sorted(read_trials(run_dir), key=lambda row: rank_key(row, objective))
    rows = [r for r in ranked if rank_key(r, objective)[0] == 0]
    if not rows:
        raise UsageError(f"{run_dir.root}: no trial reported a value to certify")
    return rows[:top]


def peak_epochs(row: dict) -> int:
    """The epochs a certified configuration retrains for: those at which its trial peaked."""
    return int(row.get("best_epoch") or row["epochs"])


def certify(session: Session, config: CertifyConfig) -> Certification:
    """Re-train, evaluate and export (see the module's docstring); returns summary.json's "certification"."""
    from search.searcher import trial_of  # Optuna loads once certification runs, not on --help

    run_dir, search, resources, progress = session.run_dir, session.search, session.resources, session.progress
    chosen = candidates(run_dir, config.top, session.objective)
    classes = len(session.prepared.classes)
    base = session.train_base(RunFacts.read(run_dir).lstm.trials)
    params = {row["trial_id"]: trial_of(run_dir, int(row["number"])).params for row in chosen}
    jobs = [
        Job(
            params[row["trial_id"]],
            configs_from(
                params[row["trial_id"]], classes, base, epochs=peak_epochs(row), schedule_epochs=base.epochs, seed=search.seed + s
            )[1],
            objective=session.objective,
            trial_id=row["trial_id"],
            rank=rank,
        )
        for rank, row in enumerate(chosen, start=1)
        for s in range(1, config.seeds + 1)
    ]
    planned = f"{quantity(len(chosen), 'configuration')} x {quantity(config.seeds, 'seed')}, {quantity(len(jobs), 'training')}"
    progress.field("certify", planned)
    started = time.time()
    metric = session.objective.metric
    results = run_jobs(
        jobs,
        session.prepared,
        resources.cpus_per_trial,
        resources.gpus_per_trial,
        on_done=lambda job, r: progress.say(f"seed      {job.name}: {metric} {r.value:.4f} at epoch {r.epoch}"),
    )
    CertifyRow.write(run_dir, [_row(job, r) for job, r in zip(jobs, results, strict=True)], session.objective)
    tested = {predictions.certified(job.trial_id, job.train.seed): r.test for job, r in zip(jobs, results, strict=True)}
    keep_predictions(run_dir, session.prepared, tested)
    summary = _summarize(jobs, results, time.time() - started, session.objective)
    mine = [(job, r) for job, r in zip(jobs, results, strict=True) if job.trial_id == summary.exported]
    if config.cv:
        summary.cross_validation = _cross_validation(session, jobs, config.cv)
        summary.examples += summary.cross_validation.examples
    if config.ablation and int(mine[0][0].params.get("ngram_buckets") or 0) > 0:
        _ablation_of(session, mine, summary)
    if config.refit:
        mine = _refit(session, mine, summary)
    summary.wall_s = time.time() - started
    _export(session, mine, summary, ensemble=config.ensemble)
    return summary


def _refit(session: Session, mine: list[tuple[Job, JobResult]], summary: Certification) -> list[tuple[Job, JobResult]]:
    """Fit the chosen configuration on train + validation with each seed, for the epochs its trial peaked at."""
    resources, progress = session.resources, session.progress
    jobs = [dataclasses.replace(job, keep="last") for job, _ in mine]
    results = run_jobs(
        jobs,
        session.prepared,
        resources.cpus_per_trial,
        resources.gpus_per_trial,
        refit=True,
        on_done=lambda job, _: progress.say(f"refit     {job.name}: {quantity(job.train.epochs, 'epoch')} on train + validation"),
    )
    for result, (_, certified) in zip(results, mine, strict=True):
        result.value = certified.value  # a refit's own validation is data it trained on: it is chosen by its seed's
    tested = {predictions.refit(job.train.seed): r.test for job, r in zip(jobs, results, strict=True)}
    keep_predictions(session.run_dir, session.prepared, tested)
    mean, std = spread([r.test_accuracy for r in results])
    f1_mean, f1_std = spread([r.test_macro_f1 for r in results])
    summary.refit = Refit(
        seeds=[
            RefitSeed(
                seed=j.train.seed,
                epochs=j.train.epochs,
                test_accuracy=r.test_accuracy,
                examples=r.examples,
                test_macro_f1=r.test_macro_f1,
            )
            for j, r in zip(jobs, results, strict=True)
        ],
        test_accuracy_mean=mean,
        test_accuracy_std=std,
        examples=sum(r.examples for r in results),
        test_macro_f1_mean=f1_mean,
        test_macro_f1_std=f1_std,
    )
    summary.examples += summary.refit.examples
    return list(zip(jobs, results, strict=True))


def _cross_validation(session: Session, jobs: list[Job], k: int) -> CrossValidation:
    """Certification's jobs (the top configurations, each seed) cross-validated over k folds (search.crossval)."""
    from search.crossval import cross_validate

    progress = session.progress
    progress.field("cv", f"{k} stratified folds of train + validation x {quantity(len(jobs), 'training')} (DIR/cv_folds.csv)")
    found = cross_validate(session.run_dir, session.prepared, jobs, k, session.search.seed, session.resources, progress.say)
    for c in found.configurations:
        progress.field(
            "cv",
            f"{c.trial_id}: out-of-fold accuracy {c.accuracy:.4f} [{c.accuracy_low:.4f}, {c.accuracy_high:.4f}] "
            f"over {k} folds x {quantity(len(c.seeds), 'seed')}",
        )
    progress.field("cv", f"{found.examples:,} training examples in {found.wall_s:.0f} s (counted in certification's)")
    return found


def _ablation_of(session: Session, mine: list[tuple[Job, JobResult]], summary: Certification) -> None:
    """Add the ablation (`_ablation`) to `summary`; on a run without a test split, say it is not made."""
    if not len(session.prepared.splits["test"]):
        session.progress.field("ablation", f"{NO_TEST_SPLIT}: the parts alone are not trained, having no split to be tested on")
        return
    summary.ablation = _ablation(session, mine)
    summary.examples += summary.ablation.examples


ABLATION_PARTS = {"network": {"ngram_buckets": 0}, "linear": {DEEP: False}}
"""The exported configuration's parts trained alone, by name: the values that leave the other part out."""


def _ablation(session: Session, mine: list[tuple[Job, JobResult]]) -> Ablation:
    """The exported configuration's network alone and linear part alone, each with its certification's
    seeds, epochs and schedule, keeping its best epoch by the objective; each tested, never chosen on."""
    run_dir, resources, progress, metric = session.run_dir, session.resources, session.progress, session.objective.metric
    parts = [(part, job) for part in ABLATION_PARTS for job, _ in mine]
    jobs = [
        dataclasses.replace(job, params={**job.params, **ABLATION_PARTS[part]}, trial_id=f"{job.trial_id}, {part} alone")
        for part, job in parts
    ]
    progress.field("ablation", f"{mine[0][0].trial_id}: its network alone and its linear part alone, {len(jobs)} trainings")
    started = time.time()
    results = run_jobs(
        jobs,
        session.prepared,
        resources.cpus_per_trial,
        resources.gpus_per_trial,
        on_done=lambda job, r: progress.say(f"ablation  {job.name}: {metric} {r.value:.4f} at epoch {r.epoch}"),
    )
    tested = {predictions.ablation(part, job.train.seed): r.test for (part, job), r in zip(parts, results, strict=True)}
    keep_predictions(run_dir, session.prepared, tested)
    network, linear = _summarize(jobs, results, 0.0, session.objective).configurations
    ablation = Ablation(network=network, linear=linear, examples=sum(r.examples for r in results), wall_s=time.time() - started)
    for part, found in (("network", network), ("linear", linear)):
        progress.field(
            part + " alone",
            f"test_accuracy {_spread(found.test_accuracy_mean, found.test_accuracy_std, len(found.seeds))} "
            f"over {quantity(len(found.seeds), 'seed')}",
        )
    progress.field("ablation", f"{ablation.examples:,} training examples in {ablation.wall_s:.0f} s (counted in certification's)")
    return ablation


def _row(job: Job, result: JobResult) -> CertifyRow:
    return CertifyRow(
        trial_id=job.trial_id,
        rank=job.rank,
        seed=job.train.seed,
        epochs=job.train.epochs,
        best_epoch=result.epoch,
        value=result.value,
        test_accuracy=result.test_accuracy,
        examples=result.examples,
        test_macro_f1=result.test_macro_f1,
    )


def _summarize(jobs: list[Job], results: list[JobResult], seconds: float, objective: Objective) -> Certification:
    configs = []
    for trial_id in dict.fromkeys(job.trial_id for job in jobs):
        mine = [(job, r) for job, r in zip(jobs, results, strict=True) if job.trial_id == trial_id]
        val_mean, val_std = spread([r.value for _, r in mine])
        test_mean, test_std = spread([r.test_accuracy for _, r in mine])
        f1_mean, f1_std = spread([r.test_macro_f1 for _, r in mine])
        first = mine[0][0]
        configs.append(
            CertifiedConfig(
                trial_id=trial_id,
                rank=first.rank,
                params=first.params,
                epochs=first.train.epochs,
                value_mean=val_mean,
                value_std=val_std,
                test_accuracy_mean=test_mean,
                test_accuracy_std=test_std,
                test_macro_f1_mean=f1_mean,
                test_macro_f1_std=f1_std,
                seeds=[_row(job, r) for job, r in mine],
            )
        )
    best = min(configs, key=lambda c: objective.worst_first(c.value_mean))
    return Certification(
        configurations=configs,
        exported=best.trial_id,
        examples=sum(r.examples for r in results),
        wall_s=seconds,
    )


def _export(session: Session, mine: list[tuple[Job, JobResult]], summary: Certification, ensemble: bool = False) -> None:
    """Ship the model of the chosen configuration's seed with the best objective (in certification),
    or with `ensemble` the mean of every seed's logits (summary.ensemble records its test result)."""
    objective, progress = session.objective, session.progress
    job, result = min(mine, key=lambda pair: objective.worst_first(pair[1].value))
    card = Card(
        trial_id=summary.exported,
        seed=job.train.seed,
        refit=bool(summary.refit),
        value=result.value,
        epoch=result.epoch,
        examples_per_s=result.mean("examples_per_s"),
        tokens_per_s=result.mean("tokens_per_s"),
        certified=_certified_of(summary),
    )
    network, tested = network_of(job.params, result.weights, len(session.prepared.classes)), result.test
    if ensemble:
        network, tested = _ensemble(session, mine)
        summary.ensemble = Ensemble(
            seeds=[j.train.seed for j, _ in mine],
            test_accuracy=tested and tested.accuracy,
            test_macro_f1=tested and tested.macro_f1,
        )
        card = dataclasses.replace(card, seed=None, ensemble=summary.ensemble)
        keep_predictions(session.run_dir, session.prepared, {predictions.ENSEMBLE: tested})
    best_model = session.run_dir.best_model
    export_network(network, job.params, session.prepared, best_model, card, job.train, tested=tested, objective=objective)
    if ensemble:
        progress.field(
            "ensemble",
            f"the mean of the logits of the {quantity(len(mine), 'refit')}: "
            + (f"test_accuracy {tested.accuracy:.4f}" if tested else NO_TEST_SPLIT)
            + " (exported: one model.keras)",
        )
    _say_certified(session, summary, quantity(len(mine), "seed"))


def _certified_of(summary: Certification) -> Certified:
    """What the card says of the exported configuration's certification: its means over seeds, the
    refits' test accuracy, its cross-validated accuracy (each where there is one)."""
    chosen, refit, found = summary.chosen, summary.refit, summary.cross_validated
    certified = Certified(chosen.value_mean, chosen.value_std, chosen.test_accuracy_mean, chosen.test_accuracy_std)
    if refit:
        certified.refit_test_accuracy_mean, certified.refit_test_accuracy_std = refit.test_accuracy_mean, refit.test_accuracy_std
    if found:
        certified.cv_folds, certified.cv_accuracy = summary.cross_validation.k, found.accuracy
        certified.cv_accuracy_low, certified.cv_accuracy_high = found.accuracy_low, found.accuracy_high
    return certified


def _say_certified(session: Session, summary: Certification, seeds: str) -> None:
    """The certified line: the headline test accuracy over `seeds` (the refits' where there are), or
    without a test split the cross-validated estimate, then the objective's mean in certification."""
    chosen, objective = summary.chosen, session.objective
    headline = summary.refit or chosen
    fitted = " (refit on train + validation)" if summary.refit else ""
    if headline.test_accuracy_mean is None:  # no test split: the cross-validated estimate is the result
        stated = f"{summary.cross_validated.text(summary.cross_validation.k)} over {seeds}; exported{fitted}"
    else:
        stated = (
            f"test_accuracy {_spread(headline.test_accuracy_mean, headline.test_accuracy_std, len(headline.seeds))} over {seeds}"
            f"{fitted}{session.prepared.facts.copies_note()}"
        )
    validated = f"{objective.metric} {_spread(chosen.value_mean, chosen.value_std, len(chosen.seeds))} in certification"
    session.progress.field("certified", f"{summary.exported}: {stated}; {validated}")


def _spread(mean: float, std: float, seeds: int) -> str:
    """ "0.9012 ± 0.0031": a mean over seeds and its standard deviation; one seed has none to give."""
    return f"{mean:.4f} ± {std:.4f}" if seeds > 1 else f"{mean:.4f} (one seed: no spread)"


def _ensemble(session: Session, mine: list[tuple[Job, JobResult]]):
    """(the network averaging every seed's logits, its test Evaluation)."""
    from models import mean_logits  # Keras loads at the export, not on --help

    job, classes = mine[0][0], len(session.prepared.classes)
    members = [network_of(j.params, r.weights, classes, name=f"seed_{j.train.seed}") for j, r in mine]
    network = mean_logits(members)
    config, data = model_config(job.params, classes), session.prepared
    return network, evaluate_test(network, data, config.vocab_size, review_tokens(config, job.train, data))


# ---------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m search.certify", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=given_path, metavar="RUN_DIR", help="a finished search's run directory")
    add_fields(parser, CertifyConfig, ["top", "seeds", "refit", "ensemble", "cv", "ablation"])
    try:
        argv = sys.argv[1:] if argv is None else argv
        args = parser.parse_args(argv)
        config = CertifyConfig(
            top=args.top, seeds=args.seeds, refit=args.refit, ensemble=args.ensemble, cv=args.cv, ablation=args.ablation
        )
        run_dir = RunDir(args.run_dir)
        if Summary.read(run_dir) is None:
            raise UsageError(f"{run_dir.root}: no finished search there (no {run_dir.summary_json.name}); run one first")
        facts = RunFacts.read(run_dir)
        if config.ensemble and facts and facts.search_config.get("max_latency_ms"):
            raise UsageError("--ensemble multiplies the latency by the seeds it averages: not on a run with --max-latency-ms")
        candidates(run_dir, config.top, facts.ranking if facts else OBJECTIVE)
        check_folds(config.cv, facts.data.class_counts if facts else None)
        if not config.cv and facts and facts.data.untested:
            raise UsageError(f"{run_dir.root}: {NO_TEST_SPLIT}; certify it by cross-validation with --cv K (e.g. --cv 10)")
    except (UsageError, ValueError) as error:
        return fail(error)
    command = shlex.join(["python", "-m", "search.certify", *argv])

    def work(session: Session) -> None:
        record(run_dir, certify(session, config), session.objective)
        say_test_claims(run_dir, session.objective, session.progress)

    return follow_up(run_dir, work, command)


def record(run_dir: RunDir, certification: Certification, objective: Objective) -> None:
    """Add the certification to summary.json (and what was exported with it, refit included; the
    cross-validated estimate as its result where the run has no test split)."""
    summary = Summary.read(run_dir, objective)
    summary.certification = certification
    summary.exported = Exported.from_card(Card.read(run_dir.best_model, objective), refit=True)
    found = certification.cross_validated
    untested = summary.exported.test_accuracy is None and found is not None  # no test split: CV is the result
    summary.result = found.text(certification.cross_validation.k) if untested else None
    summary.write(run_dir, objective)
    predictions.keep_recorded(run_dir)


if __name__ == "__main__":
    sys.exit(main())
