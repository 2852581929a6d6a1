"""Several sources in one training set: one person is one LOSO fold whichever source their samples come from."""

import argparse
import csv
import json

import numpy as np
import pytest

from engines.errors import MestreamError
from trainer.data.clips import options_for
from trainer.data.combined import as_frames_part, combine, person
from trainer.data.samples import Samples


def _samples(subjects, datasets, classes=("negative", "positive", "surprise"), names=None):
    n = len(subjects)
    return Samples(names=names or [f"{s}_{i}" for i, s in enumerate(subjects)], subjects=list(subjects),
                   datasets=list(datasets), labels=np.arange(n) % 3, flow=np.full((n, 3, 28, 28), n, np.float32),
                   apex=np.zeros((n, 224, 224, 3), np.uint8), au_text=[""] * n, classes=list(classes))


def test_the_composites_casme2_subject_and_the_same_subject_read_from_frames_are_one_person():
    assert person("casme2", "sub05") == person("casme2-frames", "sub05") == "casme2/sub05"
    assert person("samm", "6") == person("samm-frames", "006") == "samm/006"  # the composite pads SAMM's ids
    assert person("smic", "s01") != person("mmew", "S01")  # other datasets never share a fold by accident
    assert person("casme2-frames-uncut", "sub05") == "casme2/sub05"  # the second framing of the same clips too


def test_combined_samples_keep_each_source_as_a_part_and_key_subjects_by_person():
    composite = _samples(["sub05", "006", "s01"], ["casme2", "samm", "smic"])
    frames = as_frames_part(_samples(["sub05", "sub07"], ["casme2", "casme2"]))
    samples = combine([composite, frames])
    assert samples.datasets == ["casme2", "samm", "smic", "casme2-frames", "casme2-frames"]
    assert samples.subjects == ["casme2/sub05", "samm/006", "smic/s01", "casme2/sub05", "casme2/sub07"]
    assert samples.flow.shape == (5, 3, 28, 28) and samples.flow[0, 0, 0, 0] == 3 and samples.flow[3, 0, 0, 0] == 2
    from trainer.loso import loso_folds

    sub05 = loso_folds(samples.subjects)[0]
    assert sub05.subject == "casme2/sub05" and sub05.test.tolist() == [0, 3]  # held out in both forms at once
    assert 0 not in sub05.train and 3 not in sub05.train


def test_the_same_clips_in_a_second_framing_are_their_own_part_but_the_same_persons():
    from trainer.data.combined import UNCUT_SUFFIX

    recut = as_frames_part(_samples(["sub05"], ["casme2"], names=["sub05_EP01"]))
    uncut = as_frames_part(_samples(["sub05"], ["casme2"], names=["sub05_EP01"]), UNCUT_SUFFIX)
    samples = combine([_samples(["sub05"], ["casme2"]), recut, uncut])
    assert samples.datasets == ["casme2", "casme2-frames", "casme2-frames-uncut"]
    assert set(samples.subjects) == {"casme2/sub05"}


def test_sources_with_other_classes_or_added_twice_are_refused_in_one_line():
    composite = _samples(["sub05"], ["casme2"])
    with pytest.raises(MestreamError, match="differ from .*--class-map"):
        combine([composite, as_frames_part(_samples(["sub05"], ["casme2"], classes=("happiness", "other", "x")))])
    with pytest.raises(MestreamError, match="comes twice"):
        twice = as_frames_part(_samples(["sub07"], ["casme2"]))
        combine([composite, twice, twice])


def test_loader_options_go_to_the_dataset_they_name_or_to_every_one_that_takes_them():
    assert options_for("casme2", ["version=2019-07-01"], ["casme2"]) == ["version=2019-07-01"]
    assert options_for("casme2", ["casme2:version=2019-07-01", "smic:layout=hs-e"], ["casme2", "smic"]) == \
        ["version=2019-07-01"]
    assert options_for("smic", ["version=2019-07-01", "layout=hs-e"], ["casme2", "smic"]) == ["layout=hs-e"]
    with pytest.raises(MestreamError, match="names dataset 'samm', which this run does not read from frames"):
        options_for("casme2", ["samm:x=1"], ["casme2"])
    with pytest.raises(MestreamError, match="no dataset of this run"):
        options_for("casme2", ["nosuch=1"], ["casme2", "smic"])


def test_train_adds_live_form_casme2_to_the_composite_and_the_checkpoint_declares_the_composites_framing(assets, tmp_path):
    """mestream train --dataset megc2019 --add casme2 FRAMES SHEET: the shipped default's recipe, end to end."""
    torch = pytest.importorskip("torch", reason="torch comes with the [train] extra")
    pytest.importorskip("mediapipe", reason="prep tracks faces with MediaPipe")
    from frame_trees import read_frames, write_frames

    from edge.cli import main
    from edge.perception.composite_framing import COMPOSITE_WINDOW, FRAMED_FLOW_FORM, composite_flow_input
    from engines import read_artifact
    from trainer.commands.train import add_arguments, load_samples

    frames = read_frames(assets / "videos" / "casme2_sub01_EP02_01f.avi", None)
    root = tmp_path / "CASME2_Cropped"
    write_frames(root / "sub01" / "EP02_01f", [f"img{n}.jpg" for n in range(46, 87)], frames)  # happiness: positive
    write_frames(root / "sub02" / "EP01_11f", [f"img{n}.jpg" for n in range(46, 97)], frames)  # repression: negative
    out = tmp_path / "runs" / "both"
    code = main(["-q", "train", "--model", "ststnet", "--dataset", "megc2019",
                 "--data", str(assets / "preprocessed" / "HTNet_MEGC2019_composite"),
                 "--labels", str(assets / "annotations" / "wangzhifengharrison_HTNet" / "combined_3_class2_for_optical_flow.csv"),
                 "--add", "casme2", str(root), str(assets / "annotations" / "MouathAb_AnalyseMiE" / "CASME2-coding-20190701.xlsx"),
                 "--loader-option", "version=2019-07-01", "--out", str(out), "--folds", "2", "--epochs", "1", "--fit-all"])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["dataset"] == "megc2019+casme2"
    assert report["counts"]["samples"] == 444 and report["counts"]["subjects"] == 68  # two clips, no new person
    assert report["counts"]["per_part"]["casme2-frames"] == 2 and report["parts"]["casme2-frames"]["n"] == 2
    rows = {r["subject"]: r for r in csv.DictReader(open(out / "per_subject.csv"))}
    assert list(rows) == ["casme2/sub01", "casme2/sub02"]  # each fold held the person out in both forms
    checkpoint = torch.load(out / "model.pt", weights_only=False)
    assert checkpoint["crop_window"] == list(COMPOSITE_WINDOW)
    assert checkpoint["training"]["parts"] == {"casme2": 145, "smic": 164, "samm": 133, "casme2-frames": 2}
    # the added clips' flow is the composite-framed live flow of their prepared crops: what classify computes live
    with np.load(tmp_path / "runs" / ".mestream-prep" / "casme2" / "sub01" / "sub01_EP02_01f.npz") as prepared:
        expected = composite_flow_input(prepared["onset_crop"], prepared["apex_crop"])
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--model", "ststnet", "--data", str(assets / "preprocessed" / "HTNet_MEGC2019_composite"),
                              "--labels", str(assets / "annotations" / "wangzhifengharrison_HTNet" / "combined_3_class2_for_optical_flow.csv"),
                              "--add", "casme2", str(root), str(assets / "annotations" / "MouathAb_AnalyseMiE" / "CASME2-coding-20190701.xlsx"),
                              "--loader-option", "version=2019-07-01", "--out", str(out)])
    samples, window = load_samples(args, workers=1)
    assert window == COMPOSITE_WINDOW
    (i,) = [i for i, (d, n) in enumerate(zip(samples.datasets, samples.names)) if (d, n) == ("casme2-frames", "sub01_EP02_01f")]
    np.testing.assert_array_equal(samples.flow[i], expected)  # (the composite's own sub01_EP02_01f is another sample)
    args.both_framings = True  # the same two clips again with their crops as they come: the prep cache's own flow
    both, _ = load_samples(args, workers=1)
    (j,) = [j for j, (d, n) in enumerate(zip(both.datasets, both.names)) if (d, n) == ("casme2-frames-uncut", "sub01_EP02_01f")]
    with np.load(tmp_path / "runs" / ".mestream-prep" / "casme2" / "sub01" / "sub01_EP02_01f.npz") as prepared:
        np.testing.assert_array_equal(both.flow[j], prepared["flow"])
    assert len(both) == len(samples) + 2 and len(both.skipped) == len(samples.skipped)
    assert main(["-q", "export", "--checkpoint", str(out / "model.pt"), "--out", str(tmp_path / "both.onnx")]) == 0
    meta = read_artifact(tmp_path / "both.onnx")
    assert meta.flow["crop_window"] == list(COMPOSITE_WINDOW) and meta.inputs[0].normalisation == FRAMED_FLOW_FORM
    assert meta.training["dataset"] == "megc2019+casme2" and meta.training["samples"] == 444


def test_train_refuses_an_unknown_added_dataset_and_one_given_twice(assets, tmp_path, capsys):
    from edge.cli import main

    base = ["-q", "train", "--model", "ststnet", "--data", str(tmp_path), "--labels", str(tmp_path / "x.csv"),
            "--out", str(tmp_path / "out")]
    assert main([*base, "--add", "casme9", str(tmp_path), "s.xlsx"]) != 0
    assert "--add 'casme9' is not a dataset read from frames" in capsys.readouterr().err
    assert main([*base, "--add", "casme2", str(tmp_path), "s.xlsx", "--add", "casme2", str(tmp_path), "s.xlsx"]) != 0
    assert "dataset 'casme2' is given twice" in capsys.readouterr().err
    assert main([*base, "--both-framings"]) != 0
    assert "--both-framings needs --dataset megc2019 and an --add dataset" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
