import shutil
from pathlib import Path

import numpy as np
import pytest

from engines.errors import MestreamError
from trainer.data.megc2019 import APEX_DIR, FLOW_DIR, flow_file_name, load_megc2019

CSV = "annotations/wangzhifengharrison_HTNet/combined_3_class2_for_optical_flow.csv"
DATA = "preprocessed/HTNet_MEGC2019_composite"


@pytest.fixture(scope="module")
def composite(assets):
    return load_megc2019(assets / DATA, assets / CSV)


def test_the_composite_loads_442_samples_of_68_subjects_with_the_published_counts(composite):
    assert len(composite) == 442 and composite.skipped == []
    assert len(set(composite.subjects)) == 68
    assert np.bincount(composite.labels).tolist() == [250, 109, 83]
    assert {p: composite.datasets.count(p) for p in ("casme2", "smic", "samm")} == {"casme2": 145, "smic": 164, "samm": 133}
    assert composite.flow.shape == (442, 3, 28, 28) and composite.flow.dtype == np.float32
    assert composite.apex.shape == (442, 224, 224, 3) and composite.apex.dtype == np.uint8
    assert composite.classes == ["negative", "positive", "surprise"]


def test_flow_channels_are_u_v_strain_in_png_order_not_opencv_bgr(assets, composite):
    import cv2

    i = composite.names.index("sub01_EP02_01f")
    raw = cv2.imread(str(assets / DATA / FLOW_DIR / flow_file_name("sub01", "EP02_01f")))  # BGR
    assert np.allclose(composite.flow[i, 0], raw[:, :, 2] / 255.0)  # u is the PNG's first (red) channel
    assert np.allclose(composite.flow[i, 2], raw[:, :, 0] / 255.0)
    # strain is a magnitude: its mean sits far below the signed u and v, which centre near 0.5
    assert composite.flow[:, 2].mean() < 0.2 < composite.flow[:, 0].mean()


def test_flow_file_names_keep_the_literal_space_before_the_suffix():
    assert flow_file_name("006", "006_1_2") == "006_006_1_2 .png"


def _copy_subset(assets, tmp_path: Path, rows: int) -> tuple[Path, Path]:
    lines = (assets / CSV).read_text().splitlines()
    data = tmp_path / "data"
    (data / FLOW_DIR).mkdir(parents=True)
    (data / APEX_DIR).mkdir()
    for line in lines[1 : rows + 1]:
        dataset, sub, filename_o, label, apex, imagename, _ = line.split(",")
        shutil.copy(assets / DATA / FLOW_DIR / flow_file_name(sub, filename_o), data / FLOW_DIR)
        shutil.copy(assets / DATA / APEX_DIR / imagename, data / APEX_DIR)
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("\n".join(lines[: rows + 1]) + "\n")
    return data, csv_path


def test_missing_and_corrupt_images_are_skipped_by_name_without_a_crash(assets, tmp_path, caplog):
    data, csv_path = _copy_subset(assets, tmp_path, 4)
    (data / FLOW_DIR / flow_file_name("sub01", "EP02_01f")).unlink()
    (data / APEX_DIR / "sub01_EP19_05f.jpg").write_bytes(b"not a jpeg")
    samples = load_megc2019(data, csv_path)
    assert samples.names == ["sub01_EP19_06f", "sub02_EP01_11f"]
    assert len(samples.skipped) == 2
    assert "sub01_EP02_01f .png" in caplog.text and "sub01_EP19_05f.jpg" in caplog.text


def test_a_csv_without_the_needed_columns_is_one_clear_error(tmp_path, assets):
    bad = tmp_path / "bad.csv"
    bad.write_text("dataset,sub,label\ncasme2,sub01,1\n")
    with pytest.raises(MestreamError, match="lacks column.*filename_o.*imagename"):
        load_megc2019(assets / DATA, bad)


def test_a_wrong_data_path_is_one_clear_error(tmp_path, assets):
    with pytest.raises(MestreamError, match="STSNet_whole_norm_u_v_os"):
        load_megc2019(tmp_path, assets / CSV)
    with pytest.raises(MestreamError, match="does not exist"):
        load_megc2019(assets / DATA, tmp_path / "nope.csv")


def test_an_unknown_dataset_or_label_in_the_csv_is_rejected_with_its_line(tmp_path, assets):
    bad = tmp_path / "bad.csv"
    bad.write_text("dataset,sub,filename_o,label,imagename\ncasme3,sub01,EP02_01f,1,sub01_EP02_01f.jpg\n")
    with pytest.raises(MestreamError, match="line 2.*casme3"):
        load_megc2019(assets / DATA, bad)


def test_au_sheets_fill_the_action_unit_text_where_the_official_sheets_code_it(assets):
    samples = load_megc2019(assets / DATA, assets / CSV, au_sheets=assets / "annotations")
    coded = {d: sum(bool(t) for t, dd in zip(samples.au_text, samples.datasets) if dd == d) for d in ("casme2", "samm")}
    assert coded["casme2"] > 100 and coded["samm"] > 100
    assert samples.au_text[samples.names.index("sub01_EP02_01f")].startswith("AU12")
