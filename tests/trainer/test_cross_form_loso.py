"""benchmarks/cross_form_loso.py: each fold's three models never see the held-out subject, in either form."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="torch comes with the [train] extra")
SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "cross_form_loso.py"


def tag(arrays) -> list[int]:
    """The sample tags a stand-in set carries in its first flow value."""
    return sorted(set(arrays["flow"][:, 0, 0, 0].astype(int).tolist()))


def _module():
    spec = importlib.util.spec_from_file_location("cross_form_loso", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def _samples(subjects, datasets, offset):
    from trainer.data.samples import Samples

    n = len(subjects)
    flow = (np.arange(n, dtype=np.float32) + offset)[:, None, None, None] * np.ones((n, 3, 28, 28), np.float32)
    return Samples(names=[f"{s}_{i}" for i, s in enumerate(subjects)], subjects=list(subjects),
                   datasets=list(datasets), labels=np.arange(n) % 3, flow=flow,
                   apex=np.zeros((n, 2, 2, 3), np.uint8), au_text=[""] * n)


def test_fold_jobs_hold_the_subject_out_of_every_training_set_and_test_it_in_its_forms():
    cf = _module()
    comp = _samples(["sub01", "sub01", "sub02", "s01", "006", "sub03"],
                    ["casme2", "casme2", "casme2", "smic", "samm", "casme2"], offset=0)
    live = _samples(["sub02", "sub01", "sub01", "sub02"], ["casme2"] * 4, offset=100)
    jobs = cf.fold_jobs("ststnorm", comp, {"flow": comp.flow}, live, {"flow": live.flow}, "sub01", seed=2)
    assert tag(jobs["A"].train) == [2, 3, 4, 5]  # composite without sub01
    assert tag(jobs["A"].tests["a"]) == [0, 1] and tag(jobs["A"].tests["c"]) == [101, 102]
    assert tag(jobs["B"].train) == [100, 103] and tag(jobs["B"].tests["b"]) == [101, 102]
    assert tag(jobs["D"].train) == [3, 4, 100, 103]  # live others + composite SMIC and SAMM, no composite CASME II
    assert len(jobs["D"].labels) == 4
    # sub01 is the second live subject: the fold seed `mestream train --dataset casme2` gives it
    assert {job.seed for job in jobs.values()} == {2 * 1000 + 1}


def test_summary_is_mean_and_spread_over_seeds():
    cf = _module()
    entry = {"uf1": 0.8, "uar": 0.9, "n": 5}
    by_seed = {s: {k: dict(entry, uf1=0.8 + 0.02 * s) for k in ("a", "b", "c", "d", "a_matched", "c_matched",
                                                              "d_matched")} for s in (0, 1)}
    summary = cf.summarise(by_seed)
    assert summary["c"]["uf1"]["mean"] == pytest.approx(0.81) and summary["c"]["uf1"]["std"] == pytest.approx(0.01)
    assert summary["a"]["n"] == 5


def test_settings_e_and_f_add_the_composite_where_there_are_no_frames_or_all_of_it():
    cf = _module()
    comp = _samples(["sub01", "sub01", "sub02", "s01", "006", "sub03"],
                    ["casme2", "casme2", "casme2", "smic", "samm", "casme2"], offset=0)
    live = _samples(["sub02", "sub01", "sub01", "sub02"], ["casme2"] * 4, offset=100)
    jobs = cf.fold_jobs("ststnorm", comp, {"flow": comp.flow}, live, {"flow": live.flow}, "sub01", seed=0,
                        settings=("e", "f"), shared=("sub01", "sub02"))
    assert sorted(jobs) == ["E", "F"]
    assert tag(jobs["E"].train) == [3, 4, 5, 100, 103]  # sub02 has frames: its composite images are left out
    assert tag(jobs["F"].train) == [2, 3, 4, 5, 100, 103]


def test_settings_i_and_j_train_on_the_re_cut_live_clips_of_the_others_and_test_the_subjects_re_cut_clips():
    cf = _module()
    comp = _samples(["sub01", "sub02", "s01"], ["casme2", "casme2", "smic"], offset=0)
    live = _samples(["sub02", "sub01", "sub01", "sub02"], ["casme2"] * 4, offset=100)
    framed = {"flow": live.flow + 100}  # tags 200..203
    jobs = cf.fold_jobs("ststnorm", comp, {"flow": comp.flow}, live, {"flow": live.flow}, "sub01", seed=0,
                        settings=("i", "j"), framed_x=framed)
    assert tag(jobs["I"].train) == [1, 2, 200, 203] and tag(jobs["I"].tests["i"]) == [201, 202]
    assert tag(jobs["J"].train) == [1, 2, 100, 103, 200, 203] and tag(jobs["J"].tests["j"]) == [201, 202]
    assert len(jobs["J"].labels) == 6


def test_setting_k_adds_the_others_clips_re_cut_to_jittered_windows_and_l_only_trains_longer():
    cf = _module()
    comp = _samples(["sub01", "sub02", "s01"], ["casme2", "casme2", "smic"], offset=0)
    live = _samples(["sub02", "sub01", "sub01", "sub02"], ["casme2"] * 4, offset=100)
    framed = {"flow": live.flow + 100}  # tags 200..203
    jittered = ({"flow": live.flow + 200}, {"flow": live.flow + 300})  # tags 300..303, 400..403
    jobs = cf.fold_jobs("ststnorm", comp, {"flow": comp.flow}, live, {"flow": live.flow}, "sub01", seed=0,
                        settings=("j", "k", "l"), framed_x=framed, jittered_x=jittered)
    assert tag(jobs["K"].train) == [1, 2, 100, 103, 200, 203, 300, 303, 400, 403] and len(jobs["K"].labels) == 10
    assert tag(jobs["K"].tests["k"]) == [201, 202]  # tested on the re-cut input, as (j)
    assert tag(jobs["L"].train) == tag(jobs["J"].train) and jobs["L"].epochs == cf.L_EPOCHS and jobs["J"].epochs is None


def test_setting_m_is_j_without_the_composites_samm_and_smic():
    cf = _module()
    comp = _samples(["sub01", "sub02", "s01", "006"], ["casme2", "casme2", "smic", "samm"], offset=0)
    live = _samples(["sub02", "sub01", "sub01", "sub02"], ["casme2"] * 4, offset=100)
    framed = {"flow": live.flow + 100}  # tags 200..203
    jobs = cf.fold_jobs("ststnorm", comp, {"flow": comp.flow}, live, {"flow": live.flow}, "sub01", seed=0,
                        settings=("j", "m"), framed_x=framed)
    assert tag(jobs["J"].train) == [1, 2, 3, 100, 103, 200, 203]
    assert tag(jobs["M"].train) == [1, 100, 103, 200, 203] and len(jobs["M"].labels) == 5
    assert tag(jobs["M"].tests["m"]) == [201, 202]


def test_jittered_windows_are_fixed_by_seed_and_clip_and_move_each_edge_within_the_spread():
    from edge.perception.composite_framing import COMPOSITE_WINDOW

    cf = _module()
    windows = cf.jittered_windows("sub05", "EP02_01f", seed=0)
    assert len(windows) == cf.K_WINDOWS and windows == cf.jittered_windows("sub05", "EP02_01f", seed=0)
    assert windows != cf.jittered_windows("sub05", "EP02_01f", seed=1)
    assert windows != cf.jittered_windows("sub05", "EP03_01", seed=0)
    moved = np.abs(np.subtract(windows, COMPOSITE_WINDOW))
    assert moved.max() <= cf.K_SPREAD and moved.min() > 0


def test_run_seed_pools_the_tune_and_the_eval_folds_apart(monkeypatch):
    cf = _module()
    comp = _samples(["sub02", "sub03"], ["casme2"] * 2, offset=0)
    live = _samples(["sub02", "sub02", "sub03"], ["casme2"] * 3, offset=100)

    def sub02_right(job):  # the TUNE subject's clips right, the EVAL subject's wrong
        out = {}
        for key, arrays in job.tests.items():
            ids = arrays["flow"][:, 0, 0, 0].astype(int) % 100
            right = np.asarray(live.subjects)[ids] == "sub02"
            out[key] = np.eye(3, dtype=np.float32)[np.where(right, live.labels[ids], (live.labels[ids] + 1) % 3)]
        return out

    monkeypatch.setattr(cf, "run_job", sub02_right)
    out = cf.run_seed("ststnorm", comp, {"flow": comp.flow}, live, {"flow": live.flow}, ["sub02", "sub03"], 0,
                      workers=1, settings=("b",))
    assert out["b_tune"]["n"] == 2 and out["b_tune"]["acc"] == 1.0
    assert out["b_eval"]["n"] == 1 and out["b_eval"]["acc"] == 0.0 and out["b"]["n"] == 3


def test_the_seeds_ensemble_scores_the_mean_probability():
    cf = _module()
    comp = _samples(["sub01"], ["casme2"], offset=0)
    live = _samples(["sub01", "sub01"], ["casme2"] * 2, offset=100)
    live.labels = np.array([0, 1])
    # seed 0 gets the second clip wrong, seed 1 the first, but each only narrowly: the mean is right on both
    by_seed = {0: {"probs": {"i": [[0.9, 0.1, 0.0], [0.45, 0.4, 0.15]]}},
               1: {"probs": {"i": [[0.4, 0.45, 0.15], [0.0, 0.9, 0.1]]}}}
    ensemble = cf.ensemble_scores(by_seed, comp, live, ["sub01"])
    assert ensemble["i"]["acc"] == 1.0 and ensemble["i"]["n"] == 2
    assert ensemble["i"]["wrong"] == []


def test_the_seeds_ensemble_names_its_wrong_clips_and_their_part():
    cf = _module()
    comp = _samples(["sub02"], ["casme2"], offset=0)
    live = _samples(["sub02", "sub03"], ["casme2"] * 2, offset=100)  # sub02 is a TUNE subject, sub03 an EVAL one
    live.labels = np.array([0, 1])
    by_seed = {0: {"probs": {"j": [[0.1, 0.9, 0.0], [0.9, 0.1, 0.0]]}}}
    e = cf.ensemble_scores(by_seed, comp, live, ["sub02", "sub03"])["j"]
    assert e["wrong"] == ["sub02_0", "sub03_1"] and e["wrong_tune"] == ["sub02_0"] and e["wrong_eval"] == ["sub03_1"]
    assert "2 wrong (1 TUNE, 1 EVAL): sub02_0, sub03_1" in cf.ensemble_text({"j": e})


def test_the_subject_intervals_score_each_setting_on_its_own_form_and_widen_with_a_wrong_subject():
    cf = _module()
    comp = _samples(["sub01", "sub02"], ["casme2"] * 2, offset=0)
    live = _samples(["sub01", "sub01", "sub02", "sub02"], ["casme2"] * 4, offset=100)
    live.labels = np.array([0, 1, 0, 1])
    right = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    sub02_wrong = right[:2] + [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
    by_seed = {0: {"probs": {"i": right, "j": sub02_wrong, "a": [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]}}}
    intervals = cf.subject_intervals(by_seed, comp, live, ["sub01", "sub02"])
    assert intervals["i"]["uf1"] == [1.0, 1.0]
    assert intervals["j"]["uf1"][0] < intervals["j"]["uf1"][1]
    assert set(intervals) == {"i", "j", "a"}  # (a) is scored on the composite's two samples


def test_run_seed_pools_each_setting_on_its_own_form(monkeypatch):
    cf = _module()
    comp = _samples(["sub01", "sub01", "sub02", "s01"], ["casme2", "casme2", "casme2", "smic"], offset=0)
    live = _samples(["sub01", "sub02", "sub02"], ["casme2"] * 3, offset=100)
    live.names = ["sub01_0", "sub02_2", "sub02_x"]  # two clips in both forms, one only live
    live.labels = np.array([0, 2, 1])  # the shared clips' labels agree with the composite's

    def perfect(job):  # logits that pick each test sample's label, recovered from the sample id
        out = {}
        for key, arrays in job.tests.items():
            ids = arrays["flow"][:, 0, 0, 0].astype(int)
            labels = np.where(ids >= 100, live.labels[ids % 100 % len(live)], comp.labels[ids % len(comp)])
            out[key] = np.eye(3, dtype=np.float32)[labels]
        return out

    monkeypatch.setattr(cf, "run_job", perfect)
    out = cf.run_seed("ststnorm", comp, {"flow": comp.flow}, live, {"flow": live.flow}, ["sub01", "sub02"], 0,
                      workers=1, settings=("a", "b", "c", "d", "e", "f"))
    assert out["a"]["n"] == 3 and out["c"]["n"] == 3 and out["a"]["acc"] == 1.0 and out["f"]["acc"] == 1.0
    assert out["matched_clips"] == 2 and out["c_matched"]["n"] == 2
    assert out["per_subject"]["sub02"] == {"n_composite": 1, "n_live": 2, **{f"acc_{k}": 1.0 for k in "abcdef"}}


def test_setting_q_adds_the_others_near_apex_clips_and_j_and_q_are_tested_on_the_near_apex_and_video_inputs():
    cf = _module()
    comp = _samples(["sub01", "sub02"], ["casme2", "casme2"], offset=0)
    live = _samples(["sub02", "sub01", "sub01", "sub02"], ["casme2"] * 4, offset=100)
    framed = {"flow": live.flow + 100}  # tags 200..203
    near = ({"flow": live.flow + 200}, {"flow": live.flow + 300})  # tags 300..303, 400..403
    video = {"spot": {"flow": live.flow + 400}}  # tags 500..503
    jobs = cf.fold_jobs("ststnorm", comp, {"flow": comp.flow}, live, {"flow": live.flow}, "sub01", seed=0,
                        settings=("j", "q"), framed_x=framed, near_x=near, video_x=video)
    assert tag(jobs["Q"].train) == [1, 100, 103, 200, 203, 300, 303, 400, 403] and len(jobs["Q"].labels) == 9
    assert tag(jobs["Q"].tests["q"]) == [201, 202]  # tested on the re-cut input at the sheet's apex, as (j)
    assert tag(jobs["Q"].tests["q-near-0"]) == [301, 302] and tag(jobs["J"].tests["j-near-1"]) == [401, 402]
    assert tag(jobs["J"].tests["j-spot"]) == [501, 502] and tag(jobs["Q"].tests["q-spot"]) == [501, 502]


def test_the_near_apex_reading_is_the_mean_probability_of_the_frames_before_and_after(monkeypatch):
    cf = _module()
    comp = _samples(["sub02"], ["casme2"], offset=0)
    live = _samples(["sub02", "sub02"], ["casme2"] * 2, offset=100)
    live.labels = np.array([0, 1])

    def narrow(job):  # before: both clips right and sure; after: both narrowly wrong
        before = np.log(np.array([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05]], np.float32))
        after = np.log(np.array([[0.3, 0.4, 0.3], [0.4, 0.3, 0.3]], np.float32))
        return {key: {"q-near-0": before, "q-near-1": after}.get(key, before) for key in job.tests}

    monkeypatch.setattr(cf, "run_job", narrow)
    near = ({"flow": live.flow}, {"flow": live.flow})
    out = cf.run_seed("ststnorm", comp, {"flow": comp.flow}, live, {"flow": live.flow}, ["sub02"], 0, workers=1,
                      settings=("q", "q-near"), framed_x={"flow": live.flow}, near_x=near)
    assert out["q-near"]["acc"] == 1.0 and out["q-near"]["n"] == 2


def test_setting_r_trains_js_set_with_mixup_and_predicts_as_the_family_does():
    import torch

    cf = _module()
    comp = _samples(["sub01", "sub02"], ["casme2", "casme2"], offset=0)
    live = _samples(["sub02", "sub01"], ["casme2"] * 2, offset=100)
    jobs = cf.fold_jobs("ststnorm", comp, {"flow": comp.flow}, live, {"flow": live.flow}, "sub01", seed=0,
                        settings=("j", "r"), framed_x={"flow": live.flow + 100})
    assert tag(jobs["R"].train) == tag(jobs["J"].train) and jobs["R"].mixup == cf.R_ALPHA and jobs["J"].mixup == 0.0
    from trainer.models.registry import get_family

    family = get_family("ststnorm")
    torch.manual_seed(0)
    mixed = cf.MixupBuild(family.build, cf.R_ALPHA)(3)
    flow, labels = torch.rand(6, 3, 28, 28), torch.tensor([0, 1, 2, 0, 1, 2])
    loss, _ = mixed.training_loss({"flow": flow}, labels)
    assert torch.isfinite(loss) and loss.requires_grad
    plain = family.build(3)
    plain.load_state_dict(mixed.state_dict())  # after the step: batch norm's running statistics moved
    mixed.eval(), plain.eval()
    assert torch.allclose(mixed(flow), plain(flow))  # mixup only changes training


def test_spot_options_must_name_a_spot_parameter_with_a_value_in_its_range():
    cf = _module()
    assert cf.parse_spot_options(["apex_frac=0.5", "onset_frac=0.15"]) == {"apex_frac": 0.5, "onset_frac": 0.15}
    assert cf.parse_spot_options(["method=learned", "artifact=s.onnx"]) == {"method": "learned", "artifact": "s.onnx"}
    for bad, says in (("apex=0.5", "apex=0.5"), ("apex_frac=half", "'half' is not a number"), ("apex_frac", "FIELD=VALUE"),
                      ("apex_frac=2", "apex_frac=2.0"), ("method=psychic", "'psychic' is unknown")):
        with pytest.raises(SystemExit, match=says):
            cf.parse_spot_options([bad])


def test_setting_s_adds_the_others_clips_cut_at_the_spotters_frames_at_both_rates_and_is_tested_end_to_end():
    cf = _module()
    comp = _samples(["sub01", "sub02"], ["casme2", "casme2"], offset=0)
    live = _samples(["sub02", "sub01", "sub01", "sub02"], ["casme2"] * 4, offset=100)
    framed = {"flow": live.flow + 100}  # tags 200..203
    video = {"vid": {"flow": live.flow + 300}, "spot": {"flow": live.flow + 400}, "spot30": {"flow": live.flow + 500}}
    jobs = cf.fold_jobs("ststnorm", comp, {"flow": comp.flow}, live, {"flow": live.flow}, "sub01", seed=0,
                        settings=("j", "s"), framed_x=framed, video_x=video)
    assert tag(jobs["S"].train) == [1, 100, 103, 200, 203, 500, 503, 600, 603] and len(jobs["S"].labels) == 9
    assert tag(jobs["S"].tests["s"]) == [201, 202] and tag(jobs["S"].tests["s-spot30"]) == [601, 602]
    assert tag(jobs["J"].train) == [1, 100, 103, 200, 203]  # (j) is unchanged


def test_a_fold_model_is_saved_once_and_then_loaded_instead_of_trained_again(tmp_path, monkeypatch):
    cf = _module()
    rng = np.random.default_rng(0)
    flow = rng.random((6, 3, 28, 28)).astype(np.float32)
    path = tmp_path / "m.pt"
    job = cf.Job("ststnorm", {"flow": flow}, np.array([0, 1, 2, 0, 1, 2]), {"t": {"flow": flow[:2]}}, 0, 3, epochs=1,
                 model_path=str(path))
    first = cf.run_job(job)["t"]
    assert path.is_file()
    import trainer.train

    def refuse(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(trainer.train, "train_model", refuse)
    assert np.allclose(cf.run_job(job)["t"], first)
