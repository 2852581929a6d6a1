"""The action-unit model: labels from sheet codes, metrics, a fit that learns a planted AU, a LOSO that never
looks at the held-out subject, and an export the runtime reads as an AU artifact."""

import numpy as np
import pytest

from engines.errors import MestreamError
from trainer.action_units import (
    AUConfig,
    AURecipe,
    au_numbers,
    au_scores,
    au_targets,
    best_thresholds,
    binary_auc,
    binary_f1,
    modelled_aus,
    positive_counts,
    subject_groups,
)

pytest.importorskip("torch", reason="torch comes with the [train] extra")

QUICK = AURecipe(pools=(4,), l2=(1e-2, 1e-1), iterations=50)


def planted(subjects: int = 6, per_subject: int = 10, seed: int = 0):
    """Flow in the composite's [0, 1] form; clips with "AU4" move at the brows (rows 4-8, both sides), "AU12"
    clips at the mouth corners (rows 18-22); every subject has both, and clips with neither."""
    rng = np.random.default_rng(seed)
    n = subjects * per_subject
    flow = (0.45 + 0.1 * rng.random((n, 3, 28, 28))).astype(np.float32)
    codes = []
    for i in range(n):
        kind = i % 4  # 0: AU4, 1: AU12, 2: both, 3: neither
        clip = []
        if kind in (0, 2):
            flow[i, 1, 4:9, 4:10] = 0.95
            flow[i, 1, 4:9, 18:24] = 0.95
            clip.append("AU4")
        if kind in (1, 2):
            flow[i, 2, 18:23, 5:9] = 0.9
            flow[i, 2, 18:23, 19:23] = 0.9
            clip.append("R12")
        codes.append(tuple(clip))
    subject_names = [f"s{i // per_subject:02d}" for i in range(n)]
    return flow, codes, subject_names


def test_action_unit_numbers_merge_sides_and_drop_alternatives_between_different_units():
    assert au_numbers(("AU4", "R12", "L2/R2")) == {4, 12, 2}
    assert au_numbers(("R6/R12", "AU17")) == {17}
    assert au_numbers(()) == set()


def test_modelled_units_are_the_ones_coded_often_enough_in_facs_order():
    codes = [("AU4",), ("AU4", "L12"), ("R12",), ("AU1",)]
    assert positive_counts(codes) == {"AU1": 1, "AU4": 2, "AU12": 2}
    assert modelled_aus(codes, min_positives=2) == ["AU4", "AU12"]
    assert au_targets(codes, ["AU4", "AU12"]).tolist() == [[1, 0], [1, 1], [0, 1], [0, 0]]
    with pytest.raises(MestreamError, match="no action unit is coded in 3 or more"):
        modelled_aus(codes, min_positives=3)


def test_auc_is_the_chance_that_a_positive_outranks_a_negative():
    assert binary_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert binary_auc(np.array([0, 0, 1, 1]), np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert binary_auc(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5
    assert binary_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
    assert np.isnan(binary_auc(np.array([1, 1]), np.array([0.1, 0.2])))


def test_f1_and_per_unit_scores_come_from_pooled_counts():
    targets = np.array([[1, 0], [1, 1], [0, 0], [0, 1]], np.float32)
    active = np.array([[1, 0], [0, 1], [1, 0], [0, 0]], bool)
    scores = au_scores(targets, active, active.astype(np.float32), ["AU4", "AU12"])
    assert scores["AU4"]["f1"] == pytest.approx(0.5) and scores["AU4"]["positives"] == 2
    assert scores["AU12"]["precision"] == 1.0 and scores["AU12"]["recall"] == 0.5
    assert binary_f1(np.array([0, 0]), np.array([False, False])) == 0.0


def test_the_threshold_chosen_is_the_highest_of_those_with_the_best_f1_on_the_given_predictions():
    targets = np.array([[0], [0], [1], [1]], np.float32)
    probs = np.array([[0.1], [0.3], [0.4], [0.9]], np.float32)
    assert best_thresholds(targets, probs)[0] == pytest.approx(0.4)  # 0.35 and 0.4 both separate them
    assert best_thresholds(targets, np.array([[0.1], [0.5], [0.45], [0.9]], np.float32))[0] == pytest.approx(0.45)


def test_inner_groups_deal_the_subjects_out_without_looking_at_labels():
    assert subject_groups(["b", "a", "c", "a", "d"], 3) == [["a", "d"], ["b"], ["c"]]
    with pytest.raises(MestreamError, match="at least 2"):
        subject_groups(["a", "a"], 3)


def test_the_fit_learns_planted_units_and_sees_a_mirrored_face_as_the_same_face():
    import torch

    from trainer.action_units import predict_au, train_au_model
    from trainer.models.ststens import mirror_flow

    flow, codes, _ = planted()
    aus = modelled_aus(codes, min_positives=2)
    targets = au_targets(codes, aus)
    model = train_au_model(flow, targets, AUConfig(pool=4, l2=1e-2), QUICK)
    probs = predict_au(model, flow)
    assert aus == ["AU4", "AU12"]
    assert all(binary_auc(targets[:, k], probs[:, k]) == 1.0 for k in range(2))
    mirrored = mirror_flow(torch.from_numpy(flow), torch.arange(27, -1, -1)).numpy()
    assert np.allclose(predict_au(model, mirrored), probs, atol=1e-5)


def test_loso_predicts_each_subject_without_looking_at_its_labels():
    from trainer.action_units import run_au_loso

    flow, codes, subjects = planted()
    aus = ["AU4", "AU12"]
    targets = au_targets(codes, aus)
    first = run_au_loso(flow, targets, subjects, aus, QUICK, fold_limit=2)
    held = np.asarray(subjects) == subjects[0]
    scrambled = targets.copy()
    scrambled[held] = 1 - scrambled[held]  # the held-out subject's labels, all wrong
    second = run_au_loso(flow, scrambled, subjects, aus, QUICK, fold_limit=1)
    assert np.array_equal(first.probs[held], second.probs[held])
    assert np.array_equal(first.thresholds[held], second.thresholds[held])
    ran = first.fold_of >= 0
    assert ran.sum() == 20 and set(first.fold_of[ran]) == {0, 1}
    scores = au_scores(targets[ran], first.active[ran], first.probs[ran], aus)
    assert min(s["f1"] for s in scores.values()) > 0.9
    assert first.fold_choices[0]["pool"] == 4 and set(first.fold_choices[0]["thresholds"]) == set(aus)


def test_the_exported_artifact_is_an_action_unit_model_the_runtime_reads(tmp_path):
    from engines.artifact import read_artifact
    from engines.base import open_engine
    from trainer.action_units import export_au_model, fit_au_model, predict_au

    flow, codes, subjects = planted(subjects=4)
    aus = ["AU4", "AU12"]
    fitted = fit_au_model(flow, au_targets(codes, aus), subjects, aus, QUICK)
    scores = {"loso": {a: {"f1": 0.5, "auc": 0.9, "precision": 0.5, "recall": 0.5, "positives": 30} for a in aus},
              "macro_f1": 0.5, "macro_f1_aus": aus}
    meta = export_au_model(fitted, tmp_path / "au.onnx", training={"samples": len(flow)}, scores=scores, selection="test")
    read = read_artifact(tmp_path / "au.onnx")
    assert read.task == "action_units" and read.classes == ("AU4", "AU12") and set(read.thresholds) == set(aus)
    assert read.inputs[0].shape == (1, 3, 28, 28) and read.outputs[0].name == "probs" and read.flow["params"]
    assert meta.model_id == read.model_id
    from trainer.action_units import write_au_card

    card = write_au_card(tmp_path / "au.onnx", tmp_path / "AU_CARD.md", command="make it").read_text()
    assert read.model_id in card and "make it" in card and f"AU12 {read.thresholds['AU12']:.2f}" in card
    with open_engine(tmp_path / "au.onnx") as engine:
        got = engine.infer({"flow": flow[:1]})["probs"]
    assert np.allclose(got, predict_au(fitted.model, flow[:1]), atol=1e-5)
