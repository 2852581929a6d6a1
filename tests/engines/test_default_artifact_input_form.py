"""The shipped artifact's input form is the one the live pipeline feeds it (issue 18).

The default model was fitted on the MEGC2019 composite's flow images and on live-form CASME II whose aligned crops
were re-cut to the composite's framing (and, as augmentation, as they come), so its metadata declares that framing (flow.crop_window =
COMPOSITE_WINDOW): the classify stage re-cuts the aligned crops to that window and runs the live TV-L1 preset on
them (edge/stages/classify_input.py), as trainer.data.clips made its CASME II training inputs (crop_window). If the
metadata, the stage and the perception code drifted apart, the model would be scored on one input
(benchmarks/cross_form_loso.py, settings i and j) and fed another, silently.
"""

import numpy as np

from edge.messages import Message
from edge.perception import flow
from edge.perception.composite_framing import COMPOSITE_WINDOW, FRAMED_FLOW_FORM, composite_flow_input
from edge.stages import classify
from edge.stages.classify_input import FramedFlowInput
from engines import default_artifact_path, read_artifact
from trainer.prep import PrepParams


def test_the_shipped_flow_metadata_is_the_live_flow_preset_on_crops_cut_to_the_composites_framing():
    meta = read_artifact(default_artifact_path())
    assert meta.flow["algorithm"] == flow.params_dict()["algorithm"]
    assert meta.flow["crop_window"] == list(COMPOSITE_WINDOW)
    assert meta.flow["form"] == FRAMED_FLOW_FORM
    assert classify._flow_params(meta.flow) == flow.TVL1Params() == PrepParams().flow
    (spec,) = meta.inputs
    assert spec.normalisation == FRAMED_FLOW_FORM
    assert classify.flow_side(spec.shape) == 28


def test_the_classify_stage_feeds_the_shipped_artifact_the_re_cut_live_flow():
    rng = np.random.default_rng(0)
    onset = (rng.random((128, 128)) * 255).astype(np.uint8)
    apex = np.roll(onset, 2, axis=1)
    seen = []

    class Recording:  # the real engine, with its input kept
        def __init__(self, engine):
            self.engine, self.meta = engine, engine.meta

        def input_spec(self):
            return self.engine.input_spec()

        def infer(self, inputs):
            seen.append(inputs["flow"])
            return self.engine.infer(inputs)

        def close(self):
            self.engine.close()

    from engines.base import open_engine

    stage = classify.Classify(default_artifact_path(), engine_factory=lambda p: Recording(open_engine(p)))
    stage.open()
    try:
        assert [kind for kind, _ in stage._plan] == ["flow"]
        assert stage._flow_fn == FramedFlowInput(COMPOSITE_WINDOW)
        assert stage._flow_params == flow.TVL1Params()
        header = {"onset": {"seq": 1}, "apex": {"seq": 5}, "offset": {"seq": 9}, "score": 1.0}
        (event,) = stage.process(Message("interval", header, {"onset": onset, "apex": apex}))
    finally:
        stage.close()
    assert event.topic == "event"
    np.testing.assert_array_equal(seen[0][0], composite_flow_input(onset, apex, flow.TVL1Params()))


def test_the_live_form_training_clips_were_cut_and_flowed_as_the_stage_cuts_and_flows_live_crops(tmp_path):
    # trainer.data.clips makes the added CASME II clips' flow with trainer.prep.reframed_flow of their prepared
    # aligned crops and the artifact's own window; the stage must compute the very same array from those crops
    from edge.stages.classify_input import flow_function
    from trainer.prep import reframed_flow

    rng = np.random.default_rng(1)
    onset = (rng.random((128, 128)) * 255).astype(np.uint8)
    apex = np.roll(onset, 3, axis=0)
    (tmp_path / "sub05").mkdir()
    np.savez(tmp_path / "sub05" / "sub05_EP01_01.npz", onset_crop=onset, apex_crop=apex)
    meta = read_artifact(default_artifact_path())
    trained_on = reframed_flow(tmp_path, ["sub05"], ["sub05_EP01_01"], meta.flow["crop_window"])[0]
    live = flow_function(meta.flow)(onset, apex, classify._flow_params(meta.flow))
    np.testing.assert_array_equal(trained_on, live)
