"""Long-video spotting truth: the LGSNet and AUW-GCN interval CSVs of CAS(ME)^2, SAMM-LV and CAS(ME)^3."""

import pytest

from edge.spotting.metrics import iou, pool, score_video
from engines.errors import MestreamError
from trainer.data.spotting_sets import load_spotting_set, video_id, write_truth_csv

A = "annotations/"
CASME2_LGSNET = A + "williamlee91_LGSNet/casme2_annotation_357.csv"
CASME2_AUWGCN = A + "xjtupanda_AUW-GCN/cas(me)_new.csv"
SAMM_LGSNET = A + "williamlee91_LGSNet/samm_annotation.csv"
SAMM_AUWGCN = A + "xjtupanda_AUW-GCN/samm_new_25.csv"
CASME3_LGSNET = A + "williamlee91_LGSNet/cas3_annotation_full_me_reduce.csv"


def test_casme2_has_the_standard_57_micro_and_300_macro_intervals(assets):
    truth = load_spotting_set(assets / CASME2_LGSNET, "lgsnet", "cas(me)2")
    assert (len(truth.videos), truth.count("micro"), truth.count("macro"), truth.skipped) == (95, 57, 300, [])
    video = truth.videos["s15_0101"]
    assert video.frame_count == 2052 and video.intervals[0].onset == 1195 and truth.fps == 30.0


def test_the_auwgcn_casme2_file_agrees_interval_for_interval_where_it_has_an_offset(assets):
    lgsnet = load_spotting_set(assets / CASME2_LGSNET, "lgsnet", "cas(me)2")
    auwgcn = load_spotting_set(assets / CASME2_AUWGCN, "auwgcn", "cas(me)2")
    reasons = [why for _, why in auwgcn.skipped]
    assert sum("end frame 0" in why for why in reasons) == 44  # offset missing in the source sheet
    assert len(auwgcn.skipped) == 47 and auwgcn.count() == 357 - 47
    exact = sum(1 for key, video in auwgcn.videos.items() for i in video.intervals
                if (i.onset, i.offset, i.kind) in {(j.onset, j.offset, j.kind) for j in lgsnet.videos[key].intervals})
    assert exact == auwgcn.count()
    kept = load_spotting_set(assets / CASME2_AUWGCN, "auwgcn", "cas(me)2", missing_offset="apex")
    assert kept.count() == 357 - 3 and all(i.offset == i.apex for i in kept.videos["s15_0402"].intervals[:1])


def test_samm_new_25_is_in_eighths_of_samm_lv_frames_and_maps_back_with_frame_step_8(assets):
    lgsnet = load_spotting_set(assets / SAMM_LGSNET, "lgsnet", "samm-lv")
    assert (len(lgsnet.videos), lgsnet.count("micro"), lgsnet.count("macro"), lgsnet.fps) == (146, 159, 340, 200.0)
    eighths = load_spotting_set(assets / SAMM_AUWGCN, "auwgcn", "samm-lv", frame_step=8)
    assert eighths.fps == 25.0 and eighths.count() == 502 and eighths.skipped == []
    assert (70, 92, "macro", 80) in [(i.onset, i.offset, i.kind, i.apex) for i in eighths.videos["006_1"].intervals]

    def hits(candidate):
        return sum(1 for key, video in candidate.videos.items() for i in video.intervals if key in lgsnet.videos
                   and any(j.kind == i.kind and iou(i, j) >= 0.5 for j in lgsnet.videos[key].intervals))

    recording = eighths.in_recording_frames()
    assert recording.frame_step == 1 and recording.fps == 200.0
    # LGSNet has 006_1 macro 566..743 in recording frames
    assert (560, 743, "macro", 640) in [(i.onset, i.offset, i.kind, i.apex) for i in recording.videos["006_1"].intervals]
    assert hits(recording) == 499  # of 502: the two files describe the same expressions
    unscaled = load_spotting_set(assets / SAMM_AUWGCN, "auwgcn", "samm-lv")
    assert hits(unscaled) == 2  # read without the /8 the intervals are nonsense


def test_a_missing_apex_written_as_minus_one_is_no_apex_not_a_bad_row(assets):
    truth = load_spotting_set(assets / SAMM_AUWGCN, "auwgcn", "samm-lv", frame_step=8)
    assert any(i.apex is None for i in truth.videos["010_1"].intervals)


def test_casme3_intervals_are_keyed_by_subject_and_recording(assets):
    truth = load_spotting_set(assets / CASME3_LGSNET, "lgsnet", "cas(me)3")
    assert (len(truth.videos), truth.count(), truth.count("micro")) == (757, 2348, 277)
    assert "001_a" in truth.videos


def test_the_truth_scores_itself_perfectly_with_the_standard_metric(assets):
    truth = load_spotting_set(assets / CASME2_LGSNET, "lgsnet", "cas(me)2")
    total = pool(score_video(list(v.intervals), list(v.intervals)) for v in truth.videos.values())
    assert total["overall"].f1 == pytest.approx(1.0) and total["micro"].tp == 57


def test_video_names_from_both_formats_meet(assets):
    assert video_id("cas(me)2", "1", "./CAS(ME)2_longVideoFaceCropped/longVideoFaceCropped/s15/15_0101disgustingteeth") \
        == video_id("cas(me)2", "casme_015", "casme_015_0101") == "s15_0101"
    assert video_id("samm-lv", "006", "./SAMM_longvideos/006_1") == video_id("samm-lv", "samm_006", "samm_006_1")


def test_wrong_formats_datasets_steps_and_columns_are_user_errors(assets, tmp_path):
    with pytest.raises(MestreamError, match="lgsnet spotting CSV .* lacks column"):
        load_spotting_set(assets / CASME2_AUWGCN, "lgsnet", "cas(me)2")
    with pytest.raises(MestreamError, match="format 'megc' is unknown"):
        load_spotting_set(assets / CASME2_AUWGCN, "megc", "cas(me)2")
    with pytest.raises(MestreamError, match="dataset 'samm' is unknown; expected one of cas\\(me\\)2, samm-lv"):
        load_spotting_set(assets / SAMM_AUWGCN, "auwgcn", "samm")
    with pytest.raises(MestreamError, match="frame_step 0"):
        load_spotting_set(assets / SAMM_AUWGCN, "auwgcn", "samm-lv", frame_step=0)
    bad = tmp_path / "truth.csv"
    bad.write_text("subject,video,type_idx,startFrame,endFrame\n1,v,2,50,40\n1,v,3,1,2\n")
    truth = load_spotting_set(bad, "lgsnet", "cas(me)2")
    assert truth.skipped == [("v", "line 2: onset 50 is after offset 40"),
                             ("v", "line 3: type_idx '3' is not 1 (macro) or 2 (micro)")]


def test_a_video_is_written_as_a_spot_eval_truth_file_counting_frames_from_zero(assets, tmp_path):
    from edge.tools.synth import read_truth

    truth = load_spotting_set(assets / CASME2_AUWGCN, "auwgcn", "cas(me)2")
    video = truth.videos["s15_0401"]
    path = tmp_path / "s15_0401.csv"
    write_truth_csv(video, path)
    back = read_truth(path)
    assert [(i.onset + 1, i.offset + 1, i.kind, None if i.apex is None else i.apex + 1) for i in back] == \
        [(i.onset, i.offset, i.kind, i.apex) for i in video.intervals]
    assert (back[0].onset, back[0].apex, back[0].offset) == (556, 571, 607)
    assert not list(tmp_path.glob(".*.tmp"))
