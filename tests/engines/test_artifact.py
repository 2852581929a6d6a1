import subprocess
import sys
from pathlib import Path

import pytest
from tiny_artifacts import make_linear_onnx, tiny_artifact_meta

from engines.artifact import Artifact, read_artifact
from engines.errors import MestreamError


def test_metadata_round_trips_through_the_onnx_file(tiny_onnx):
    meta = read_artifact(tiny_onnx)
    expected = tiny_artifact_meta()
    assert meta.to_json() == expected.to_json()
    assert meta.path == tiny_onnx
    assert meta.input("flow").shape == (1, 3, 28, 28)
    assert meta.short_id == expected.model_id[:12]


def test_reading_an_artifact_needs_neither_torch_nor_onnx(tiny_onnx):
    code = (
        "import sys\n"
        "sys.modules['torch'] = None\n"  # any import of torch or onnx now raises ImportError
        "sys.modules['onnx'] = None\n"
        "from engines.artifact import read_artifact\n"
        f"meta = read_artifact({str(tiny_onnx)!r})\n"
        "print(meta.family, meta.classes)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "tiny ('negative', 'positive', 'surprise')" in out.stdout


def test_summary_names_the_family_inputs_classes_and_scores(tiny_onnx):
    text = read_artifact(tiny_onnx).summary()
    assert "tiny" in text and "flow [1, 3, 28, 28]" in text
    assert "negative, positive, surprise" in text
    assert "UF1 0.7000" in text


def test_a_missing_file_is_one_clear_line(tmp_path):
    with pytest.raises(MestreamError, match="does not exist") as info:
        read_artifact(tmp_path / "nope.onnx")
    assert "\n" not in str(info.value)


def test_a_file_that_is_not_onnx_is_refused_in_one_line(tmp_path):
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"this is not a protobuf at all" * 10)
    with pytest.raises(MestreamError, match="not a loadable ONNX model") as info:
        read_artifact(bogus)
    assert "\n" not in str(info.value)


def test_an_onnx_model_without_mestream_metadata_is_refused(tmp_path):
    plain = make_linear_onnx(tmp_path / "plain.onnx")
    with pytest.raises(MestreamError, match="without mestream metadata"):
        read_artifact(plain)


def test_corrupt_metadata_json_is_refused(tmp_path):
    path = make_linear_onnx(tmp_path / "bad.onnx", metadata_text="{not json")
    with pytest.raises(MestreamError, match="not valid JSON"):
        read_artifact(path)


def test_a_newer_schema_version_is_refused_with_the_fix(tmp_path):
    data = tiny_artifact_meta().to_json()
    data["v"] = 99
    import json

    path = make_linear_onnx(tmp_path / "v99.onnx", metadata_text=json.dumps(data))
    with pytest.raises(MestreamError, match="version 99 is not supported"):
        read_artifact(path)


def test_metadata_missing_required_fields_names_them():
    with pytest.raises(MestreamError, match="lacks classes"):
        Artifact.from_json({"schema": "mestream.artifact", "v": 1, "model": {}, "inputs": [], "outputs": []})


def test_malformed_tensor_entries_are_reported_not_crashed():
    data = tiny_artifact_meta().to_json()
    data["inputs"] = [{"name": "flow"}]  # no shape
    with pytest.raises(MestreamError, match="malformed mestream metadata"):
        Artifact.from_json(data, Path("x.onnx"))


def test_an_action_unit_artifact_round_trips_its_task_and_thresholds_and_a_classifier_stays_as_it_was():
    from dataclasses import replace

    classifier = tiny_artifact_meta()
    assert "task" not in classifier.to_json() and "thresholds" not in classifier.to_json()
    au = replace(classifier, classes=("AU4", "AU12"), task="action_units", thresholds={"AU4": 0.6, "AU12": 0.25})
    back = Artifact.from_text(au.to_text())
    assert back.task == "action_units" and back.thresholds == {"AU4": 0.6, "AU12": 0.25}
    assert "thresholds AU4 0.60, AU12 0.25" in back.summary()


def test_an_unknown_artifact_task_is_refused_in_one_line():
    data = tiny_artifact_meta().to_json()
    data["task"] = "regression"
    with pytest.raises(MestreamError, match="task 'regression' is unknown"):
        Artifact.from_json(data)
