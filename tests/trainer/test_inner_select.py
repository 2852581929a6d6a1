"""Inner selection validates on training subjects only, and the same seed gives the same numbers."""

import numpy as np
import pytest

from engines.errors import MestreamError
from trainer.inner_select import parse_variant, validation_splits

# three parts, four subjects each, three samples per subject
SUBJECTS = [f"{part}{k}" for part in ("c", "s", "m") for k in range(4) for _ in range(3)]
DATASETS = [{"c": "casme2", "s": "smic", "m": "samm"}[s[0]] for s in SUBJECTS]


def test_the_validation_splits_take_the_first_fold_of_each_part_and_never_touch_its_held_out_subject():
    splits = validation_splits(SUBJECTS, DATASETS, outer_per_part=1, seed=0)
    assert [held for held, _fit, _val in splits] == ["c0", "s0", "m0"]
    for held, fit, val in splits:
        fit_subjects, val_subjects = {SUBJECTS[i] for i in fit}, {SUBJECTS[i] for i in val}
        assert held not in fit_subjects | val_subjects
        assert not fit_subjects & val_subjects and val_subjects
        assert len(fit) + len(val) == len(SUBJECTS) - 3


def test_a_variant_is_read_as_typed_key_value_pairs_and_a_bare_word_is_refused():
    assert parse_variant("epochs=50,lr=0.002,members=3") == {"epochs": 50, "lr": 0.002, "members": 3}
    with pytest.raises(MestreamError, match="KEY=VALUE"):
        parse_variant("epochs")


def _samples():
    from trainer.data.samples import Samples

    rng = np.random.default_rng(0)
    n = len(SUBJECTS)
    return Samples(names=[f"x{i}" for i in range(n)], subjects=SUBJECTS, datasets=DATASETS,
                   labels=np.arange(n) % 3, flow=rng.random((n, 3, 28, 28), dtype=np.float32),
                   apex=np.zeros((n, 8, 8, 3), np.uint8), au_text=[""] * n)


def test_the_same_seed_gives_the_same_validation_scores_for_every_ensemble_size_and_view():
    pytest.importorskip("torch", reason="torch comes with the [train] extra")
    from trainer.inner_select import select

    variants = [{"epochs": 1, "batch_size": 8, "members": 2}]
    first = select("ststens", _samples(), variants, seeds=[0])
    again = select("ststens", _samples(), variants, seeds=[0])
    assert first == again
    assert {row["scoring"] for row in first["rows"]} == {
        f"members={m},mirror={v}" for m in (1, 2) for v in (0, 1)}
    assert first["outer_subjects"] == ["c0", "s0", "m0"]
    assert all(0.0 <= row["uf1"] <= 1.0 for row in first["rows"])


def test_a_variant_the_family_cannot_build_is_one_line_before_any_training():
    pytest.importorskip("torch", reason="torch comes with the [train] extra")
    from trainer.inner_select import select

    with pytest.raises(MestreamError, match="'eyes'.*pass center="):
        select("ststens", _samples(), [{"epochs": 1, "center": "eyes"}], seeds=[0])
    with pytest.raises(MestreamError, match="does not fit ststens.*keyword of ststens's build"):
        select("ststens", _samples(), [{"epochs": 1, "heads": 4}], seeds=[0])


def test_the_command_reports_a_bad_variant_in_one_line(capsys, tmp_path):
    from trainer.inner_select import main

    assert main(["--data", str(tmp_path), "--labels", str(tmp_path / "x.csv"), "--family", "ststens",
                 "--variant", "epochs", "--out", str(tmp_path / "o.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --variant item 'epochs' is not KEY=VALUE") and "\n" not in err
