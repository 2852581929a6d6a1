import json

from edge.cli import main


def test_spot_eval_scores_a_synthetic_video_and_writes_json_and_a_plot(assets, tmp_path, capsys):
    video, truth = tmp_path / "s.mp4", tmp_path / "s.csv"
    assert main(["synth", "--face", str(assets / "videos" / "evm_face.mp4"), "--out", str(video),
                 "--truth", str(truth), "--seconds", "5", "--seed", "11", "--no-progress"]) == 0
    report, plot = tmp_path / "r.json", tmp_path / "r.png"
    assert main(["spot-eval", "--source", str(video), "--truth", str(truth), "--json", str(report),
                 "--plot", str(plot)]) == 0
    doc = json.loads(report.read_text())
    assert set(doc["scores"]) == {"micro", "macro", "overall"}
    assert doc["frames"] == 150
    truth_micro = sum(t["kind"] == "micro" for t in doc["truth"])
    assert doc["scores"]["micro"]["truth"] == truth_micro > 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "micro" in capsys.readouterr().out


def test_spot_eval_counts_every_face_frame_at_200_fps_though_the_spotter_analyses_every_fourth(assets, tmp_path):
    video, truth = tmp_path / "s.avi", tmp_path / "s.csv"
    assert main(["synth", "--face", str(assets / "videos" / "evm_face.mp4"), "--out", str(video), "--truth", str(truth),
                 "--seconds", "2.5", "--fps", "200", "--seed", "11", "--no-progress"]) == 0
    report = tmp_path / "r.json"
    assert main(["spot-eval", "--source", str(video), "--truth", str(truth), "--json", str(report)]) == 0
    assert json.loads(report.read_text())["frames"] == 500


def test_a_video_without_a_face_runs_to_the_end_with_a_face_lost_status(assets, tmp_path):
    report = tmp_path / "r.json"
    assert main(["spot-eval", "--source", str(assets / "videos" / "pyfeat_no_face.mp4"), "--json", str(report)]) == 0
    doc = json.loads(report.read_text())
    assert doc["predicted"] == []
    assert [s["event"] for s in doc["statuses"] if s["stage"] == "track"] == ["face_lost"]


def test_a_missing_source_or_truth_is_one_clear_error(tmp_path, capsys):
    assert main(["spot-eval", "--source", str(tmp_path / "nope.mp4")]) == 2
    assert "nope.mp4 does not exist" in capsys.readouterr().err
    video = tmp_path / "v.mp4"
    video.write_bytes(b"")
    assert main(["spot-eval", "--source", str(video), "--truth", str(tmp_path / "t.csv")]) == 2
    assert "t.csv does not exist" in capsys.readouterr().err
