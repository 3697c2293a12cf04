"""bench.groove_fit: onsets from truth notes, and the per-class fit figures."""
import numpy as np
import pytest

from bench.groove_fit import class_fit, sent_by_truth, truth_onsets

LABELS = ["kick", "snare", "hihat", "toms", "cymbals"]


def test_notes_within_10_ms_are_one_onset_with_every_class():
    times, y = truth_onsets([(1.0, "kick"), (0.5, "hihat"), (1.004, "cymbals"), (1.03, "snare")],
                            LABELS)
    assert times.tolist() == [0.5, 1.0, 1.03]
    assert y.tolist() == [[0, 0, 1, 0, 0], [1, 0, 0, 0, 1], [0, 1, 0, 0, 0]]


def test_class_fit_ranks_and_thresholds():
    y = np.array([1, 1, 1, 0, 0, 0], np.float32)
    f, best, auc = class_fit(y, np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1]), threshold=0.95)
    assert (f, best, auc) == (0.0, 1.0, 1.0)           # a better threshold alone fixes it
    f, best, auc = class_fit(y, np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9]), threshold=0.5)
    assert f == 0.0 and auc == 0.0
    assert best == pytest.approx(2 / 3)                # everything sent: P 0.5, R 1
    _, _, auc = class_fit(np.array([1, 0, 1, 0], np.float32), np.array([0.6, 0.6, 0.4, 0.4]), 0.5)
    assert auc == 0.5                                   # tied pairs count half: chance
    assert np.isnan(class_fit(np.ones(3, np.float32), np.ones(3), 0.5)[2])


def test_sent_by_truth_shows_a_snare_sent_as_a_tom():
    labels = ["kick", "snare", "toms"]
    y = np.array([[0, 1, 0], [0, 1, 0], [0, 1, 0], [1, 0, 0], [0, 0, 0]])
    p = np.array([[.1, .2, .9], [.1, .3, .8], [.1, .9, .1], [.9, .1, .1], [.1, .1, .6]])
    rows = sent_by_truth(y, p, np.array([.5, .5, .5]), labels)
    assert [(name, n) for name, n, _ in rows] == [("snare", 3), ("-", 1), ("kick", 1)]
    np.testing.assert_allclose(rows[0][2], [0, 1 / 3, 2 / 3])
    np.testing.assert_allclose(rows[1][2], [0, 0, 1])          # a tom sent where no drum was
