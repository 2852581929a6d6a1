"""`mestream bench-engine --data --labels`: the trainer's accuracy mode beside engines' latency bench."""

from edge.cli import main
from engines import default_artifact_path

COMPOSITE = "preprocessed/HTNet_MEGC2019_composite"
LABELS = "annotations/wangzhifengharrison_HTNet/combined_3_class2_for_optical_flow.csv"


def test_bench_engine_scores_the_default_artifact_on_every_composite_sample_after_timing_it(assets, capsys):
    argv = ["bench-engine", "--artifact", str(default_artifact_path()), "-n", "20", "--warmup", "2",
            "--data", str(assets / COMPOSITE), "--labels", str(assets / LABELS)]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    timing = [line for line in lines if line.startswith("ort ") and "p50" in line]
    scores = [line for line in lines if line.startswith("ort ") and "UF1" in line]
    assert len(timing) == 1 and len(scores) == 1
    assert "on 442 samples" in scores[0]
    uf1 = float(scores[0].split("UF1 ")[1].split()[0])
    assert 0.3 < uf1 <= 1.0  # a trained 3-class artifact on samples it has seen, far above chance


def test_bench_engine_wants_data_and_labels_together(tmp_path, capsys):
    assert main(["bench-engine", "--data", str(tmp_path)]) == 2
    assert "--data and --labels go together" in capsys.readouterr().err


def test_bench_engine_without_data_is_the_latency_bench_alone(capsys):
    assert main(["bench-engine", "-n", "10", "--warmup", "1"]) == 0
    out = capsys.readouterr().out
    assert "p50" in out and "UF1" not in out
