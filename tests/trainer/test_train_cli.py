"""`mestream train` end to end on the real composite, a few folds and epochs; bad input fails cleanly."""

import csv
import json

import pytest

pytest.importorskip("torch", reason="torch comes with the [train] extra")

from edge.cli import main  # noqa: E402

CSV = "annotations/wangzhifengharrison_HTNet/combined_3_class2_for_optical_flow.csv"
DATA = "preprocessed/HTNet_MEGC2019_composite"


def _train(assets, out, *extra):
    return main(["-q", "train", "--model", "ststnet", "--dataset", "megc2019", "--data", str(assets / DATA),
                 "--labels", str(assets / CSV), "--protocol", "loso", "--out", str(out), *extra])


@pytest.fixture(scope="module")
def two_runs(assets, tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    args = ("--seed", "3", "--folds", "3", "--epochs", "3")
    assert _train(assets, root / "a", *args, "--fit-all") == 0
    assert _train(assets, root / "b", *args) == 0
    return root / "a", root / "b"


def test_train_writes_the_report_tables_and_figures(two_runs):
    out = two_runs[0]
    for name in ("report.json", "per_subject.csv", "predictions.csv", "confusion.png", "curves.png", "model.pt"):
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text())
    assert report["protocol"] == "loso" and report["seed"] == 3
    assert set(report["parts"]["full"]) >= {"uf1", "uar", "acc"}
    assert "test subject" in report["selection"] and "overridden" in report["selection"]
    assert report["counts"]["folds_run"] == 3 and report["epochs_override"] == 3
    assert report["skipped"]["count"] == 0
    assert len(report["curves"]["loss"]) == 3
    rows = list(csv.DictReader(open(out / "per_subject.csv")))
    assert [r["subject"] for r in rows] == ["sub01", "sub02", "sub03"]
    predictions = list(csv.DictReader(open(out / "predictions.csv")))
    assert len(predictions) == report["parts"]["full"]["n"] == sum(int(r["n"]) for r in rows)


def test_the_report_gives_the_full_figure_an_interval_over_resampled_subjects(two_runs):
    report = json.loads((two_runs[0] / "report.json").read_text())
    interval, full = report["interval"], report["parts"]["full"]
    assert interval["resampled"] == "subjects" and interval["level"] == 0.95 and interval["draws"] == 2000
    for metric in ("uf1", "uar"):
        low, high = interval[metric]
        assert 0.0 <= low <= high <= 1.0
        assert low <= full[metric] + 0.05 and full[metric] - 0.05 <= high  # around the pooled figure


def test_the_same_seed_gives_the_same_numbers(two_runs):
    a, b = (json.loads((run / "report.json").read_text()) for run in two_runs)
    assert a["parts"] == b["parts"]
    assert (two_runs[0] / "predictions.csv").read_text() == (two_runs[1] / "predictions.csv").read_text()


def test_fit_all_checkpoint_describes_itself_for_export(two_runs):
    import torch

    checkpoint = torch.load(two_runs[0] / "model.pt", weights_only=False)
    assert checkpoint["family"] == "ststnet" and checkpoint["num_classes"] == 3
    assert checkpoint["classes"] == ["negative", "positive", "surprise"]
    assert checkpoint["inputs"][0]["name"] == "flow" and list(checkpoint["inputs"][0]["shape"]) == [3, 28, 28]
    assert checkpoint["training"] == {"dataset": "megc2019", "samples": 442, "subjects": 68}
    assert checkpoint["protocol"] == "loso" and "full" in checkpoint["scores"]["parts"] and checkpoint["selection"]
    assert checkpoint["scores"]["interval"]["resampled"] == "subjects"
    from edge.perception.composite_framing import COMPOSITE_WINDOW

    assert checkpoint["crop_window"] == list(COMPOSITE_WINDOW)  # the composite's framing, which export declares
    from trainer.models.registry import get_family

    get_family("ststnet").build(3).load_state_dict(checkpoint["state_dict"])


def test_folds_in_parallel_workers_give_the_same_numbers(assets, tmp_path, two_runs):
    assert _train(assets, tmp_path / "w", "--seed", "3", "--folds", "3", "--epochs", "3", "--workers", "2") == 0
    assert (tmp_path / "w" / "predictions.csv").read_text() == (two_runs[1] / "predictions.csv").read_text()


@pytest.mark.parametrize(
    "change, message",
    [
        (["--model", "nosuchnet"], "unknown model 'nosuchnet'"),
        (["--dataset", "casme9"], "unknown dataset 'casme9'"),
        (["--protocol", "kfold"], "unknown protocol 'kfold'"),
        (["--data", "/nonexistent/folder"], "--data /nonexistent/folder is not a folder"),
        (["--labels", "/nonexistent/labels.csv"], "does not exist"),
        (["--epochs", "0"], "--epochs 0"),
        (["--seed", "-1"], "--seed -1 is negative"),
    ],
)
def test_bad_input_is_one_line_and_nothing_is_written(assets, tmp_path, capsys, change, message):
    args = {"--model": "ststnet", "--dataset": "megc2019", "--data": str(assets / DATA), "--labels": str(assets / CSV),
            "--protocol": "loso", "--out": str(tmp_path / "out"), "--folds": "1", "--epochs": "1"}
    args.update(dict(zip(change[::2], change[1::2])))
    rc = main(["-q", "train", *[x for kv in args.items() for x in kv]])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]
    assert list(tmp_path.iterdir()) == []


def test_a_csv_missing_columns_fails_before_anything_is_written(assets, tmp_path, capsys):
    bad = tmp_path / "labels.csv"
    bad.write_text("dataset,sub,label\ncasme2,sub01,1\n")
    rc = _train(assets, tmp_path / "out", "--labels", str(bad), "--folds", "1")
    assert rc != 0 and "lacks column" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.csv"]


def test_a_failure_during_training_leaves_no_half_written_output(assets, tmp_path, monkeypatch):
    import trainer.train as train

    def boom(*args, **kwargs):
        raise RuntimeError("simulated crash in the middle of a fold")

    monkeypatch.setattr(train, "train_model", boom)
    with pytest.raises(RuntimeError):
        _train(assets, tmp_path / "out", "--folds", "1", "--epochs", "1")
    assert list(tmp_path.iterdir()) == []
