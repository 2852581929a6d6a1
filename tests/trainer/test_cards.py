"""trainer.cards: a model card is rendered from the artifact's own metadata, scores and licence included."""

import pytest

torch = pytest.importorskip("torch", reason="torch comes with the [train] extra")

from trainer.cards import LICENCE_NOTE, write_model_card  # noqa: E402
from trainer.export import export_model  # noqa: E402

CLASSES = ["negative", "positive", "surprise"]


def _artifact(path, scores):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 28 * 28, 3)).eval()
    return export_model(model, family="tiny", inputs=[{"name": "flow", "shape": [3, 28, 28], "meaning": "flow"}],
                        classes=CLASSES, out=path, protocol="loso", scores=scores,
                        selection="fixed recipe, no epoch selection",
                        training={"dataset": "megc2019", "samples": 442, "subjects": 68, "fit_all": True})


def test_the_model_card_is_rendered_from_the_artifact_with_scores_and_licence(tmp_path):
    _artifact(tmp_path / "tiny.onnx", {"parts": {"full": {"uf1": 0.71, "uar": 0.72, "acc": 0.73}}})
    card = write_model_card(tmp_path / "tiny.onnx", tmp_path / "MODEL_CARD.md", command="make it").read_text()
    assert "family **tiny**" in card and "`negative`, `positive`, `surprise`" in card
    assert "| full | 0.7100 | 0.7200 | 0.7300 |" in card
    assert "Protocol: `loso`" in card and "fixed recipe, no epoch selection" in card
    assert "442 samples from 68 subjects" in card
    assert LICENCE_NOTE in card and "research" in card
    assert "## Reproduce\n\n```\nmake it\n```" in card  # benchmarks/restamp_flow.py reads the command back there


def test_the_card_gives_the_interval_over_resampled_subjects_when_the_trainer_recorded_one(tmp_path):
    parts = {"full": {"uf1": 0.71, "uar": 0.72, "acc": 0.73}}
    _artifact(tmp_path / "a.onnx", {"parts": parts, "interval": {"uf1": [0.6123, 0.8], "uar": [0.6, 0.8], "draws": 2000}})
    card = write_model_card(tmp_path / "a.onnx", tmp_path / "A.md", command="x").read_text()
    assert "the full UF1 would lie in 0.612-0.800 (95%)" in card
    _artifact(tmp_path / "b.onnx", {"parts": parts})
    assert "would lie in" not in write_model_card(tmp_path / "b.onnx", tmp_path / "B.md", command="x").read_text()


def test_scores_recorded_as_bare_parts_by_the_trainer_are_shown_too(tmp_path):
    scores = {"full": {"uf1": 0.74, "uar": 0.75, "acc": 0.76, "n": 442}, "samm": {"uf1": 0.6, "uar": 0.61, "acc": 0.62}}
    artifact = _artifact(tmp_path / "t.onnx", scores)
    assert "full: UF1 0.7400, UAR 0.7500, ACC 0.7600" in artifact.summary()
    card = write_model_card(tmp_path / "t.onnx", tmp_path / "CARD.md", command="x").read_text()
    assert "| full | 0.7400 | 0.7500 | 0.7600 |" in card and "| samm | 0.6000 | 0.6100 | 0.6200 |" in card


def test_a_model_trained_on_clips_from_frames_says_so_with_its_live_input_figures(tmp_path):
    from dataclasses import replace

    from edge.perception.composite_framing import COMPOSITE_WINDOW
    from trainer.cards import render_model_card

    artifact = _artifact(tmp_path / "t.onnx", {"full": {"uf1": 0.8, "uar": 0.8, "acc": 0.8},
                                              "casme2-frames": {"uf1": 0.86, "uar": 0.88, "acc": 0.9}})
    training = {"dataset": "megc2019+casme2", "samples": 555, "subjects": 68,
                "parts": {"casme2": 145, "smic": 164, "samm": 133, "casme2-frames": 113}}
    artifact = replace(artifact, training=training, flow={**artifact.flow, "crop_window": list(COMPOSITE_WINDOW)})
    run = {"command": "python benchmarks/cross_form_loso.py --settings i", "meaning": {"i": "composite + re-cut live"},
           "summary": {"i": {"n": 113, "uf1": {"mean": 0.8591, "std": 0.0004, "per_seed": [0.8586, 0.8594, 0.8594]},
                             "uar": {"mean": 0.8877, "std": 0.0038, "per_seed": [0.893, 0.885, 0.885]}},
                       "i_matched": {"n": 109, "uf1": {}, "uar": {}}, "i_tune": {"n": 66, "uf1": {}, "uar": {}}}}
    card = render_model_card(artifact, command="x", size_bytes=1, live_input=[run], live_setting="i")
    assert "| casme2-frames | 0.8600 | 0.8800 | 0.9000 |" in card
    assert "Samples per part: casme2 145, smic 164, samm 133, casme2-frames 113" in card
    assert "113 casme2 clips prepared from their frames by the live perception code" in card
    assert "| **(i) composite + re-cut live** | **113** | **0.8591 ± 0.0004** | **0.8877 ± 0.0038** |" in card
    assert "python benchmarks/cross_form_loso.py --settings i" in card and "i_matched" not in card and "i_tune" not in card
    assert "resampled subjects" not in card  # a run without intervals adds no column
    with_interval = render_model_card(artifact, command="x", size_bytes=1, live_setting="i",
                                      live_input=[{**run, "intervals": {"i": {"uf1": [0.7512, 0.9388], "uar": [0.8, 0.95]}}}])
    assert "| **(i) composite + re-cut live** | **113** | **0.8591 ± 0.0004** | **0.8877 ± 0.0038** | " \
           "**0.8586 / 0.8594 / 0.8594** | **0.751-0.939** |" in with_interval
    assert "UF1 95%, resampled subjects" in with_interval
    assert "end to end" not in card  # no end-to-end rows, no word about them
    spot = {"n": 113, "uf1": {"mean": 0.8843, "std": 0.0088, "per_seed": [0.87, 0.89, 0.89]},
            "uar": {"mean": 0.9, "std": 0.01, "per_seed": [0.9, 0.9, 0.9]}}
    end_to_end = render_model_card(artifact, command="x", size_bytes=1, live_setting="i",
                                   live_input=[{**run, "summary": {**run["summary"], "i-spot": spot}}])
    assert "the live label end to end" in end_to_end and "| (i-spot) " in end_to_end
