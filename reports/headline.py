"""The run page's first section: the best model against the tutorial's two, with what the test split
and the data say about it, what it cost, how it serves, and its certification over seeds.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from matplotlib.figure import Figure

from reports import analysis, claims, figures, page, versus
from reports.analysis import metric_name
from reports.load import Run
from reports.sections import Report, config_text, floor_sentence
from runfiles import predictions
from runfiles.layout import NO_TEST_SPLIT, as_float, quantity
from runfiles.vectorcard import VectorsCard


def section(report: Report) -> page.Section:
    """The best model and the tutorial's two, side by side, then what the test split, the data, the
    compute, serving and certification say about them."""
    run, rows = report.run, report.rows
    tested = ["test accuracy"] if not run.untested else []  # no test split: no column of empty cells
    table = page.table(
        ["model", "trial", "configuration", metric_name(run.metric), *tested, "examples/s", "tokens/s", "state"],
        [
            [
                r["model"],
                r["trial_id"],
                config_text(r["params"], run.space),
                r.get("val_text") or analysis.fmt_metric(run.metric, r["value"]),
                *[r.get("test_text") or page.fmt_accuracy(r["test_accuracy"]) for _ in tested],
                page.fmt_number(r["examples_per_s"]),
                page.fmt_number(r["tokens_per_s"]),
                r["state"],
            ]
            for r in rows
        ],
        numeric=set(range(3, 6 + len(tested))),
    )
    body = [
        table,
        "".join(page.paragraph(line) for line in _versus(run, rows)),
        _on_test(run),
        page.note(_test_note(run)),
        page.note(_linear_note(run)),
        page.note(_head_note(run)),
        _compute(run),
        _vectors(run),
        _serving(run),
        _certified(run),
        _cross_validation(run),
        _ablation(run),
        _by_class(run, report.add),
    ]
    return page.section("headline", "Best model vs the tutorial's two models", *body)


def _versus(run: Run, rows: list[dict]) -> list[str]:
    """The best model's training throughput against each other row's. Their scores are compared on
    the test split only (`_on_test`): a search's best validation score is the best of many, and
    flatters it against one model's."""
    if not rows or not rows[0]["model"].startswith("best"):
        return []
    best, lines = rows[0], []
    for other in rows[1:]:
        speed = best["examples_per_s"] / other["examples_per_s"] if other["examples_per_s"] > 0 else math.nan
        if not math.isnan(speed):
            lines.append(f"vs {other['model']}: {speed:.2f}× its training throughput")
    return lines


def _on_test(run: Run) -> str:
    """What ships and the certified mean on the test split with their 95% intervals, against each
    model tested on the same examples (difference, interval, verdict: reports.versus); macro-F1's
    table too where it ranks; "" without the export's test predictions."""
    metrics = ("accuracy", "macro_f1") if run.metric == "val_macro_f1" else ("accuracy",)
    classes = len(analysis.class_names(run))
    found = [versus.claims_of(run.predictions, run.summary, run.baseline, m, classes) for m in metrics]
    if found[0] is None:
        return ""
    told = found[0]
    intro = (
        f"Every figure here is measured on the same {told.examples:,} test examples, from the predictions the run "
        "directory keeps, with its 95% interval: Wilson's for one model's accuracy, the bootstrap over test examples "
        f"for a mean over seeds or macro-F1, and for a difference the paired bootstrap ({claims.RESAMPLES:,} resamples; "
        "Dror et al. 2018) with McNemar's exact test between two single models. A difference is "
        f"{claims.AHEAD} or {claims.BEHIND} when its interval excludes 0, else {claims.UNDECIDED}."
    )
    return "<h3>On the test split</h3>" + page.paragraph(intro) + "".join(_claims_table(run, t) for t in found)


def _cross_validation(run: Run) -> str:
    """The top configurations' K-fold CV estimates over train + validation, with their intervals; "" without."""
    cv = run.summary.certification.cross_validation if run.summary and run.summary.certification else None
    if cv is None or not cv.configurations:
        return ""
    rows = [
        [
            c.trial_id,
            config_text(c.params or {}, run.space),
            c.epochs,
            f"{as_float(c.accuracy):.2%} [{as_float(c.accuracy_low):.2%}, {as_float(c.accuracy_high):.2%}]",
            analysis.plus_minus(np.mean(c.fold_accuracy), np.std(c.fold_accuracy, ddof=1)) if len(c.fold_accuracy) > 1 else "",
        ]
        for c in cv.configurations
    ]
    headers = ["trial", "configuration", "epochs", "out-of-fold accuracy [95% interval]", "per fold and seed (mean ± std)"]
    no_test = run.untested
    intro = (
        f"{cv.k}-fold stratified cross-validation over the {page.fmt_number(cv.labelled)} labelled training examples "
        f"(train + validation; the folds, shuffled with seed {cv.seed}, are in cv_folds.csv): each configuration trained "
        "on the other folds with each seed for the epochs its trial peaked at, its last epoch predicting the held-out "
        "fold, nothing chosen on it. The estimate is the out-of-fold accuracy, mean over seeds; its interval is the "
        "bootstrap over examples, which leaves out what the folds' overlapping training sets add (Bengio & Grandvalet "
        f"2004). {page.fmt_number(cv.examples)} training examples in {page.fmt_seconds(cv.wall_s)}, counted in "
        "certification's compute."
        + (" With no test split, this is the run's estimate of how its configurations classify new texts." if no_test else "")
    )
    return "<h3>Cross-validation</h3>" + page.paragraph(intro) + page.table(headers, rows, numeric={2}) + _cv_linear(run)


def _cv_linear(run: Run) -> str:
    """The linear baseline cross-validated on the same folds, and the exported configuration's
    difference from it, paired over the labelled examples; "" without (a run with a test split)."""
    found = versus.cross_validated_versus_linear(run.predictions, run.summary)
    if found is None:
        return ""
    linear, difference = found
    return page.paragraph(
        "The linear baseline, cross-validated on the same folds at the C it chose on validation: "
        f"out-of-fold accuracy {claims.percent(linear)}. {run.summary.certification.exported} minus it: "
        f"{claims.points(difference, claims.CV_UNDECIDED)} (the paired bootstrap over the labelled examples, Dror et al. 2018)."
    )


def _ablation(run: Run) -> str:
    """The exported configuration beside its network alone and its linear part alone, over the same
    seeds and epochs (reports.versus.ablation_parts), with the ablation's cost; "" without one."""
    parts = versus.ablation_parts(run.predictions, run.summary, len(analysis.class_names(run)))
    if not parts:
        return ""
    ablation, whole = run.summary.certification.ablation, parts[0].certified
    rows = [
        [
            part.name,
            analysis.plus_minus(part.certified.value_mean, part.certified.value_std, run.metric),
            claims.percent(part.score)
            if part.score
            else analysis.plus_minus(part.certified.test_accuracy_mean, part.certified.test_accuracy_std),
            claims.points(part.versus_whole) if part.versus_whole else "",
        ]
        for part in parts
    ]
    headers = [
        "model",
        f"{metric_name(run.metric)} (mean ± std)",
        "test accuracy, mean over seeds [95% interval]",
        "− the whole, points [95%], verdict",
    ]
    intro = (
        f"The exported configuration ({whole.trial_id}) adds a linear part on words and hashed bigrams to its BiLSTM. "
        f"Each part was also trained alone with the same {quantity(len(whole.seeds), 'seed')} and "
        f"{quantity(whole.epochs, 'epoch')}, on the "
        f"training split as certification trains, and tested once: {page.fmt_number(ablation.examples)} training "
        f"examples in {page.fmt_seconds(ablation.wall_s)}, counted in certification's compute (python -m search.certify "
        "--no-ablation skips it)."
    )
    return "<h3>What each part contributes</h3>" + page.paragraph(intro) + page.table(headers, rows)


def _claims_table(run: Run, told: versus.Claims) -> str:
    """One metric's claims: the shipped model, the certified mean, then each other model with the
    shipped model's and the certified mean's difference from it; a difference column that no row
    fills (no other model, or none certified) is left out."""
    what = "accuracy" if told.metric == "accuracy" else "macro-F1"
    names = {preset: f"{preset}, the tutorial's training" for preset in (run.baseline.models if run.baseline else {})}
    names[predictions.LINEAR] = analysis.LINEAR_MODEL
    rows = [["shipped (best_model/)", claims.percent(told.shipped), "", ""]]
    if told.certified is not None:
        refits = run.summary.certification.refit is not None
        seeds = f"the {quantity(len(told.certified_seeds), 'refit')}" if refits else quantity(len(told.certified_seeds), "seed")
        rows.append([f"certified: mean over {seeds}", claims.percent(told.certified), "", ""])
    for other in told.others:
        rows.append(
            [
                names.get(other.name, other.name),
                claims.percent(other.score),
                claims.points(other.shipped),
                claims.points(other.certified) if other.certified else "",
            ]
        )
    headers = ["model", f"test {what} [95% interval]", "shipped − it, points [95%], verdict", "certified mean − it"]
    kept = [i for i in range(len(headers)) if i < 2 or any(row[i] for row in rows)]  # no column empty in every row
    return page.table([headers[i] for i in kept], [[row[i] for i in kept] for row in rows], numeric={1})


def _linear_note(run: Run) -> str:
    """How the linear baseline was fitted, its wall time and its inference speed; "" without one."""
    linear = run.baseline.linear if run.baseline else None
    if linear is None:
        return ""
    tried = ", ".join(linear.values)
    speed = as_float(linear.predict_per_s)
    return (
        f"The linear baseline (scikit-learn: TF-IDF word uni+bigrams, logistic regression) chose C={as_float(linear.c):g} "
        f"from {tried} on the validation split and was refitted on train + validation: {as_float(linear.fit_s):.1f} s "
        "for every fit"
        + ("" if math.isnan(speed) else f"; it classifies {speed:,.0f} test reviews/s from raw text on this machine's CPUs")
        + "."
    )


def _test_note(run: Run) -> str:
    """Where test accuracies come from, how many test reviews copy training ones, and the majority-class
    floor; without a test split, that nothing is tested and what the result is instead."""
    if run.untested:
        return (
            f"{NO_TEST_SPLIT[0].upper()}{NO_TEST_SPLIT[1:]}: nothing is tested; trials are ranked on validation, and the "
            "result is the exported configuration's cross-validated accuracy (Cross-validation, below)."
        )
    test_note = (
        "Test accuracy is measured only for what is exported or certified; trials are ranked on validation."
        if run.summary
        else "Test accuracy appears when the run finishes and exports its best model."
    )
    copies = run.info.data.test_copies
    if copies:
        tests = run.info.data.sizes.get("test")
        test_note += (
            f" {copies:,} of the {tests:,} test reviews cop{'ies' if copies == 1 else 'y'} a training review"
            " (after the standardization): every test accuracy here includes them."
        )
    floor = floor_sentence(run)
    return test_note + (f" {floor}" if floor else "")


def _head_note(run: Run) -> str:
    """With more than two classes, how the tutorial's presets differ from the tutorial's models."""
    count = len(analysis.class_names(run))
    if count <= 2:
        return ""
    return (
        f"With {count} classes, the tutorial's presets are shown with a {count}-way head (softmax over {count} logits) "
        "instead of the tutorial's one logit (sigmoid); the layers before it are the tutorial's."
    )


def _by_class(run: Run, add: Callable[[str, Figure | None], str | None]) -> str:
    """The exported model on the test split per class (precision, recall, F1, macro-F1) and its confusion matrix."""
    exported = run.summary.exported if run.summary else None
    if exported is None or (exported.test_confusion is None and exported.test_macro_f1 is None):
        return ""
    title = "<h3>The exported model by class (test split)</h3>"
    scores = analysis.per_class(exported.test_confusion, analysis.class_names(run))
    if scores is None:
        recorded = analysis.fmt_metric("test_macro_f1", exported.test_macro_f1)
        why = (
            "no confusion matrix"
            if exported.test_confusion is None
            else "a confusion matrix that is not a square table of counts"
        )
        return title + page.paragraph(f"macro-F1 {recorded}" if recorded else "") + page.note(f"summary.json holds {why}.")
    total = int(scores["support"].sum())
    rows = [
        [
            name,
            f"{r.support:,}",
            f"{r.predicted:,}",
            page.fmt_accuracy(r.precision),
            page.fmt_accuracy(r.recall),
            page.fmt_accuracy(r.f1),
        ]
        for name, r in zip(scores.index, scores.itertuples(), strict=True)
    ]
    means = scores[["precision", "recall", "f1"]].mean()
    rows.append([f"macro average ({len(scores)} classes)", f"{total:,}", f"{total:,}", *map(page.fmt_accuracy, means)])
    accuracy = float(np.trace(np.asarray(exported.test_confusion, dtype=float))) / total if total else math.nan
    intro = (
        f"The exported model on the {total:,} test examples, evaluated once: accuracy {page.fmt_accuracy(accuracy)}, "
        f"macro-F1 {page.fmt_accuracy(means['f1'])} (F1 averaged over the {len(scores)} classes, unweighted). Precision: "
        "of the examples it predicts as a class, the share that are of it; recall: of a class's examples, the share it finds."
    )
    picture = figures.confusion_figure(exported.test_confusion, list(scores.index))
    return (
        title
        + page.paragraph(intro)
        + page.table(["class", "test examples", "predicted as it", "precision", "recall", "F1"], rows, numeric={1, 2, 3, 4, 5})
        + page.figure(add("confusion.png", picture), "confusion matrix of the exported model on the test split")
    )


def _compute(run: Run) -> str:
    """Training examples each part of the run processed; a bar of the search's budget used."""
    parts = []
    for what, examples, budget in analysis.compute(run):
        text = f"{what}: {examples:,.0f} training examples"
        if budget:
            text += f" of a budget of {budget:,.0f} ({examples / budget:.0%})"
            parts.append(page.paragraph(text) + f'<progress value="{examples:.0f}" max="{budget:.0f}"></progress>')
        else:
            parts.append(page.paragraph(text))
    total = _total_compute(run)
    if total:
        parts.insert(0, page.paragraph(total))
    return "<h3>Compute</h3>" + "".join(parts) if parts else ""


def _vectors(run: Run) -> str:
    """The word vectors the run's embeddings could start from: the file, its coverage, and where a
    card lies beside it (`runfiles.vectorcard`), what they were learned from and their CPU cost,
    which no training-examples budget counts; "" without vectors."""
    vectors = run.info.data.embeddings
    if vectors is None:
        return ""
    parts = [page.paragraph(f"Word vectors (--embeddings): {vectors.text()}.")]
    if vectors.card:
        parts.append(page.paragraph(vectors_provenance(VectorsCard.from_json(vectors.card))))
    return "<h3>Word vectors</h3>" + "".join(parts)


def vectors_provenance(card: VectorsCard) -> str:
    """Where a vectors file came from and what learning it cost, from its card, in one sentence."""
    sources = ", ".join(f"{s.flag} {s.path} ({s.texts:,} texts)" for s in card.sources) or "texts not named"
    return (
        f"Learned by {card.model} ({card.dim} numbers per word, {card.epochs} epochs) from {card.texts:,} texts, "
        f"{card.tokens:,} words ({sources}), with: {card.command}. Learning the vectors: {card.cpu_s:,.0f} s CPU "
        f"({card.wall_s:,.0f} s wall), not counted in the search's budget."
    )


def _total_compute(run: Run) -> str:
    """What the exported result cost in training examples (search, certification, refit) against
    the tutorial's way on the same data; "" without certification or split sizes."""
    tutorial = analysis.tutorial_compute(run)
    found = {what: examples for what, examples, _ in analysis.compute(run)}
    certified = found.get(analysis.CERTIFICATION)
    if tutorial is None or certified is None or analysis.SEARCH not in found:
        return ""
    reviews, budget = tutorial
    total = found[analysis.SEARCH] + certified
    return (
        f"In all, the certified result took {total:,.0f} training examples (search, certification and refit): "
        f"{total / budget:.2f}× the tutorial's {budget:,} (its 2 models × 10 epochs × {reviews:,} training reviews)."
    )


def _serving(run: Run) -> str:
    """The exported model and the tutorial's, measured for serving (best_model/benchmark.json), and the
    linear baseline's speed (baseline.json); "" without a benchmark."""
    bench = run.serving
    if not bench or not bench.models:
        return ""
    batches = list(next(iter(bench.models.values())).throughput_per_s)
    headers = ["model", "p50 ms", "p95 ms", "p99 ms", *(f"texts/s at batch {b}" for b in batches)]
    headers += ["load s", "MiB", "parameters", "peak MiB"]
    table = page.table(headers, _serving_rows(run, batches), numeric=set(range(1, 9 + len(batches))))
    threads = bench.threads
    return (
        "<h3>Serving</h3>"
        + page.paragraph(
            f"Each model loaded from model.keras in a fresh process with {threads} TensorFlow thread{'s' * (threads != 1)}, "
            f"on {bench.machine.cpus} CPUs: latency of one request of one test text ({bench.requests:,} requests), "
            f"throughput over {bench.texts:,} test texts per batch size"
            + (f" (the test split's {bench.test_texts:,} texts, repeated)" if bench.repeated else "")
            + ", size on disk, parameters, the measuring process's own peak resident memory "
            "(python -m search.serving DIR measures it again)."
        )
        + table
    )


def _serving_rows(run: Run, batches: list[str]) -> list[list[str]]:
    """One row per model measured (its latency percentiles, throughput at each of `batches`, load
    time, size, parameters, peak memory), and the linear baseline's speed where it was measured."""
    rows = [
        [
            "best (exported)" if name == "exported" else f"{name} (untrained: same cost)",
            f"{m.latency_ms.p50:.1f}",
            f"{m.latency_ms.p95:.1f}",
            f"{m.latency_ms.p99:.1f}",
            *(page.fmt_number(m.throughput_per_s.get(b)) for b in batches),
            f"{m.load_s:.2f}",
            f"{m.size_bytes / 2**20:.1f}",
            f"{m.params:,}",
            f"{m.peak_memory_mib:,.0f}",
        ]
        for name, m in run.serving.models.items()
    ]
    linear = run.baseline.linear if run.baseline else None
    if linear is not None and not math.isnan(as_float(linear.predict_per_s)):
        rows.append([analysis.LINEAR_MODEL, "", "", "", *("" for _ in batches), "", "", "", ""])
        rows[-1][4 + len(batches) - 1] = f"{as_float(linear.predict_per_s):,.0f} (all test texts at once)"
    return rows


def _certified(run: Run) -> str:
    """Every certified configuration's seeds: validation and test accuracy (and test macro-F1 where
    the run ranks by it and recorded it)."""
    certified = run.summary.certification if run.summary else None
    if certified is None or not certified.configurations:
        return ""
    macro = run.metric == "val_macro_f1" and all(c.test_macro_f1_mean is not None for c in certified.configurations)
    tested = not run.untested
    rows = [
        [
            c.rank,
            c.trial_id,
            config_text(c.params or {}, run.space),
            c.epochs,
            analysis.plus_minus(c.value_mean, c.value_std, run.metric),
            *([analysis.plus_minus(c.test_accuracy_mean, c.test_accuracy_std)] if tested else []),
            *([analysis.plus_minus(c.test_macro_f1_mean, c.test_macro_f1_std)] if macro else []),
            *([", ".join(page.fmt_accuracy(s.test_accuracy) for s in c.seeds)] if tested else []),
        ]
        for c in certified.configurations
    ]
    headers = ["rank", "trial", "configuration", "epochs", "validation (mean ± std)", *(["test (mean ± std)"] * tested)]
    headers += ["test macro-F1 (mean ± std)"] if macro else []
    table = page.table([*headers, *(["test per seed"] * tested)], rows, numeric={0, 3})
    return "<h3>Certified over seeds</h3>" + page.paragraph(_certified_text(run, len(rows))) + table


def _certified_text(run: Run, top: int) -> str:
    """What certification re-trained, what it exported, and what the result is."""
    certified = run.summary.certification
    if run.untested:
        result = "its result, with no test split, is its cross-validated accuracy (below)"
        shipped = "refit on train + validation with the same seeds, the refit of the seed that validated best shipped"
        shipped = f"{shipped}; {result}" if certified.refit is not None else f"its best seed is the model shipped; {result}"
    else:
        shipped = (
            "refit on train + validation with the same seeds; its test accuracy over those fits is the headline, and "
            "the refit of the seed that validated best in certification is the model shipped"
            if certified.refit is not None
            else "its best seed is the model shipped"
        )
    return (
        f"The top {quantity(top, 'configuration')} re-trained with fresh seeds on the training split; "
        f"{certified.exported}, the best mean {metric_name(run.metric)}, is exported: {shipped}."
    )
