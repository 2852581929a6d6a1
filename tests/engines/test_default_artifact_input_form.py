"""The shipped artifact's input form is the one the live pipeline feeds it (issue 18).

The classify stage rebuilds the flow from the artifact's metadata (edge/stages/classify.py) and `mestream
prep` makes live-form training inputs with PrepParams().flow; if the three drifted apart, the model would be
scored on one input and fed another, silently.
"""

from edge.perception import flow
from edge.stages import classify
from engines import default_artifact_path, read_artifact
from trainer.prep import PrepParams


def test_the_shipped_flow_metadata_is_the_live_flow_preset_and_form():
    meta = read_artifact(default_artifact_path())
    live = flow.params_dict()
    assert meta.flow["algorithm"] == live["algorithm"]
    assert meta.flow["form"] == flow.FLOW_FORM
    assert classify._flow_params(meta.flow) == flow.TVL1Params() == PrepParams().flow
    (spec,) = meta.inputs
    assert spec.normalisation == flow.FLOW_FORM
    assert classify.flow_side(spec.shape) == 28


def test_the_classify_stage_feeds_the_shipped_artifact_the_live_flow():
    stage = classify.Classify(default_artifact_path())
    stage.open()
    try:
        assert [kind for kind, _ in stage._plan] == ["flow"]
        assert stage._flow_fn is flow.flow_input  # the function trainer.prep makes training inputs with
        assert stage._flow_params == flow.TVL1Params()
    finally:
        stage.close()
