import json

import numpy as np
import pytest

pytest.importorskip("torch", reason="torch comes with the [train] extra")

from edge.cli import main  # noqa: E402
from edge.spotting.learned import FeatureSpec, PeakParams, spotter_from_artifact  # noqa: E402
from edge.spotting.metrics import Interval  # noqa: E402
from engines.base import open_engine  # noqa: E402
from trainer.cards import write_model_card  # noqa: E402
from trainer.spotting.features import TrackedVideo, pseudo_labels, window_features  # noqa: E402
from trainer.spotting.train import (  # noqa: E402
    SpotterRecipe,
    SpotVideo,
    choose_peaks,
    cross_validate,
    export_spotter,
    fit,
    mirror,
    predict,
    spot,
)

SPEC = FeatureSpec(flow_size=32, roi=12, lag_s=0.1)  # k = 3 at 30 fps: tiny and fast


def _toy_video(name: str, seed: int, events: list[tuple[int, int]], n: int = 120) -> SpotVideo:
    """Windows whose features carry a mouth-region push while a window overlaps an expression."""
    rng = np.random.default_rng(seed)
    k = SPEC.k(30.0)
    truth = [Interval(a, b, "micro", (a + b) // 2) for a, b in events]
    starts = np.arange(n - k)
    y = pseudo_labels(starts, k, truth)
    x = rng.normal(0.0, 0.05, (len(starts), 3, SPEC.roi, SPEC.roi)).astype(np.float32)
    x[:, 1, SPEC.roi // 2 :, :] += 0.8 * y[:, None, None]  # v moves in the mouth half as much as the label says
    x[:, 2, SPEC.roi // 2 :, :] += 0.3 * y[:, None, None]
    return SpotVideo(name, name, 30.0, truth, [(starts, x)], [y])


def test_pseudo_labels_are_the_share_of_the_window_an_expression_covers():
    truth = [Interval(10, 14, "micro"), Interval(30, 60, "macro"), Interval(80, 85, "blink")]
    y = pseudo_labels(np.array([0, 5, 8, 10, 12, 14, 27, 40, 80]), 4, truth)
    # window [8, 12] covers 3 of the micro's 5 frames -> 3/5; [10, 14] all of it; blinks are negatives
    np.testing.assert_allclose(y, [0, 0, 3 / 5, 1, 3 / 5, 1 / 5, 2 / 5, 1, 0], rtol=1e-6)


def test_mirrored_features_flip_the_layout_and_the_sign_of_u():
    x = np.random.default_rng(0).normal(size=(2, 3, 6, 6)).astype(np.float32)
    m = mirror(x)
    np.testing.assert_array_equal(m[:, 0], -x[:, 0, :, ::-1])
    np.testing.assert_array_equal(m[:, 1:], x[:, 1:, :, ::-1])
    np.testing.assert_array_equal(mirror(m), x)


def test_window_features_skip_frames_without_a_face_and_have_the_artifact_shape():
    rng = np.random.default_rng(1)
    n, size = 20, 64
    base = rng.integers(0, 255, (size, size)).astype(np.uint8)
    crops = np.stack([np.roll(base, i % 3, axis=0) for i in range(n)])
    found = np.ones(n, bool)
    found[9] = False  # face lost at frame 9: windows never straddle it
    video = TrackedVideo("v", 30.0, found, crops, np.zeros((n, 478, 2), np.float32), np.zeros((n, 4), np.float32))
    segments = window_features(video, SPEC)
    k = SPEC.k(30.0)
    assert [list(s) for s, _ in segments] == [list(range(0, 9 - k)), list(range(10, 20 - k))]
    assert segments[0][1].shape == (9 - k, 3, SPEC.roi, SPEC.roi) and segments[0][1].dtype == np.float32


def test_a_tiny_training_run_lowers_the_loss_and_separates_expressions():
    video = _toy_video("a", 0, [(20, 28), (60, 75), (95, 100)])
    model, losses = fit([video], SPEC, SpotterRecipe(epochs=8, batch=16, lr=3e-3), seed=0)
    assert losses[-1] < 0.5 * losses[0]
    scores = predict(model, video.segments[0][1])
    y = video.labels[0]
    assert scores[y > 0.9].mean() > scores[y == 0].mean() + 0.4


def test_leave_one_video_out_finds_held_out_expressions_with_peaks_from_the_training_videos():
    videos = [_toy_video(f"v{i}", i, [(15 + 3 * i, 24 + 3 * i), (60, 68 + i), (90, 97)]) for i in range(3)]
    cv = cross_validate(videos, SPEC, SpotterRecipe(epochs=8, batch=16, lr=3e-3), "lovo")
    assert [f["held_out"] for f in cv["folds"]] == ["v0", "v1", "v2"]
    assert cv["pooled"]["micro"]["truth"] == 9
    assert cv["pooled"]["micro"]["f1"] >= 0.6


def test_peak_search_recovers_the_truth_from_perfect_scores():
    video = _toy_video("p", 3, [(20, 28), (60, 70)])
    peaks, fit_scores = choose_peaks([video], [[video.labels[0]]], SPEC, max_event_s=4.0)
    assert fit_scores["micro"]["f1"] == 1.0
    found = spot(video, video.labels, SPEC, peaks, 4.0)
    k = SPEC.k(30.0)
    assert len(found) == 2
    for got, want in zip(found, video.truth):
        assert abs(got.onset - want.onset) <= k and abs(got.offset - want.offset) <= k


def test_export_matches_torch_within_1e4_on_onnx_runtime_and_describes_its_features(tmp_path):
    import torch

    video = _toy_video("e", 4, [(30, 40)])
    model, _ = fit([video], SPEC, SpotterRecipe(epochs=1, batch=32), seed=0)
    peaks = PeakParams(threshold=0.4, smooth=3, merge=2)
    out = tmp_path / "spotter.onnx"
    meta = export_spotter(model, SPEC, out, training={"dataset": "synth"}, protocol="lovo", scores={},
                          selection={"peaks": peaks.to_json()})
    assert meta.family == "softnet" and out.is_file()
    x = video.segments[0][1][:5]
    with open_engine(out) as engine:
        spec, got_peaks = spotter_from_artifact(engine.meta)
        assert spec == SPEC and got_peaks == peaks
        assert engine.meta.inputs[0].shape == (1, 3, SPEC.roi, SPEC.roi)
        for row in x:
            have = engine.infer({"flow": row[None]})["score"]
            with torch.no_grad():
                want = model(torch.from_numpy(row[None])).numpy()
            assert have.shape == (1, 1)
            assert float(np.max(np.abs(have - want))) <= 1e-4
    comparison = {"pooled": {m: {k: {"f1": 0.5} for k in ("micro", "macro", "overall")} for m in ("regional", "learned")},
                  "videos": [{"video": "x_1"}]}
    card = write_model_card(out, tmp_path / "SPOTTER_CARD.md", command="mestream train-spotter ...",
                            comparison=comparison).read_text()
    assert "SYNTHETIC" in card and '"threshold": 0.4' in card and "| overall | 0.500 | 0.500 |" in card


def test_a_spotter_trained_on_real_clips_says_so_with_its_figures_on_unseen_subjects_and_their_licence(tmp_path):
    video = _toy_video("r", 5, [(30, 40)])
    model, _ = fit([video], SPEC, SpotterRecipe(epochs=1, batch=32), seed=0)
    out = tmp_path / "spotter.onnx"
    training = {"dataset": "casme2-clips", "videos": ["sub02_EP01_still_200_0"], "samples": 90, "subjects": 1,
                "fps": [30.0, 200.0]}
    export_spotter(model, SPEC, out, training=training, protocol="loso", scores={},
                   selection={"peaks": PeakParams().to_json()})

    def cell(recall):
        return {"pooled": {"recall": recall, "recall_any": 0.95, "extra_per_clip": 0.04}}

    real = {"results": {"default": {"eval": {"still": {"200": cell(0.964)}}},
                        "learned": {"eval": {"still": {"200": cell(0.655)}}}}}
    card = write_model_card(out, tmp_path / "SPOTTER_CARD.md", command="python benchmarks/spotter_real_train.py ...",
                            real=real).read_text()
    assert "SYNTHETIC" not in card and "real CASME II micro-expression clips" in card and "at 30 and 200 fps" in card
    assert "| still | 200 | 0.964 / 0.950 / 0.04 | 0.655 / 0.950 / 0.04 |" in card
    assert "non-commercial research only" in card and "synthetic warps" not in card


def test_train_spotter_needs_labels_for_long_video_sets_and_says_so(tmp_path, capsys):
    code = main(["train-spotter", "--dataset", "casme2-lv", "--videos", str(tmp_path), "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--labels" in err[0]


def test_train_spotter_refuses_a_negative_seed_before_reading_anything(tmp_path, capsys):
    code = main(["train-spotter", "--videos", str(tmp_path), "--out", str(tmp_path / "o"), "--seed", "-2"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--seed -2 is negative" in err[0]


def test_train_spotter_on_a_folder_without_synth_videos_is_one_clear_error(tmp_path, capsys):
    code = main(["train-spotter", "--videos", str(tmp_path), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "no video with a truth CSV" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_report_and_artifact_come_from_train_spotter_on_synthetic_videos(assets, tmp_path, capsys):
    folder = tmp_path / "synth"
    folder.mkdir()
    for seed in (5, 6):
        assert main(["synth", "--face", str(assets / "videos" / "evm_face.mp4"), "--out", str(folder / f"evm_{seed}.mp4"),
                     "--truth", str(folder / f"evm_{seed}.csv"), "--seconds", "4", "--seed", str(seed),
                     "--no-progress"]) == 0
    out = tmp_path / "run"
    assert main(["train-spotter", "--videos", str(folder), "--out", str(out), "--epochs", "2"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert [f["held_out"] for f in report["cross_validation"]["folds"]] == ["evm_5", "evm_6"]
    assert set(report["cross_validation"]["pooled"]) == {"micro", "macro", "overall"}
    with open_engine(out / "spotter.onnx") as engine:
        assert engine.meta.family == "softnet"
        assert engine.meta.training["videos"] == ["evm_5", "evm_6"]
    assert "held-out" in capsys.readouterr().out


def test_casme2_long_videos_are_read_from_frame_folders_with_the_lgsnet_csv(assets, tmp_path):
    import cv2

    from trainer.spotting.train import load_long_videos

    folder = tmp_path / "rawpic" / "s15" / "15_0101disgustingteeth"  # the dataset's own layout, img1.jpg ...
    folder.mkdir(parents=True)
    cap = cv2.VideoCapture(str(assets / "videos" / "evm_face.mp4"))
    for i in range(1, 21):
        ok, frame = cap.read()
        assert ok
        cv2.imwrite(str(folder / f"img{i}.jpg"), frame)
    cap.release()
    labels = tmp_path / "casme2.csv"
    labels.write_text("subject,video,type,type_idx,startFrame,endFrame,frame_num,length\n"
                      "1,./longVideoFaceCropped/s15/15_0101disgustingteeth,micro-expression,2,8,13,20,5\n"
                      "1,./longVideoFaceCropped/s15/15_0102eatingworms,macro-expression,1,3,12,20,9\n")
    videos = load_long_videos("casme2-lv", tmp_path / "rawpic", labels, SPEC, cache=tmp_path / "cache")
    assert [v.name for v in videos] == ["s15_0101"]  # the other video has no frames here: skipped, named in the log
    v = videos[0]
    assert v.fps == 30.0 and v.windows == 20 - SPEC.k(30.0)
    assert [(i.onset, i.offset, i.kind) for i in v.truth] == [(7, 12, "micro")]  # img8..img13 -> frames 7..12
    assert v.labels[0].max() == 1.0
