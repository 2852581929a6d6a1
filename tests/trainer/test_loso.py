import numpy as np

from trainer.loso import inner_split, loso_folds

SUBJECTS = ["s1", "s1", "s2", "s3", "s3", "s3", "s2"]


def test_every_subject_is_held_out_exactly_once_and_never_trained_on():
    folds = loso_folds(SUBJECTS)
    assert [f.subject for f in folds] == ["s1", "s2", "s3"]
    tested = np.concatenate([f.test for f in folds])
    assert sorted(tested.tolist()) == list(range(len(SUBJECTS)))
    for fold in folds:
        assert fold.subject not in {SUBJECTS[i] for i in fold.train}
        assert {SUBJECTS[i] for i in fold.test} == {fold.subject}
        assert len(fold.train) + len(fold.test) == len(SUBJECTS)


def test_a_fold_limit_keeps_the_first_subjects():
    assert [f.subject for f in loso_folds(SUBJECTS, limit=2)] == ["s1", "s2"]


def test_the_inner_validation_split_uses_training_subjects_only_and_whole_subjects():
    fold = loso_folds(SUBJECTS)[0]
    fit, val = inner_split(fold.train, SUBJECTS, fraction=0.5, seed=0)
    assert set(fit.tolist()) | set(val.tolist()) == set(fold.train.tolist())
    assert not {SUBJECTS[i] for i in fit} & {SUBJECTS[i] for i in val}
    assert "s1" not in {SUBJECTS[i] for i in np.concatenate([fit, val])}
