"""Detections: track ids and equality."""
import numpy as np
import pytest

from edge import Detections


def _dets(track_ids=None):
    return Detections([[0, 0, 10, 10], [5, 5, 20, 30]], [0.9, 0.4], [0, 2], ["person", "car"], track_ids)


def test_equality_compares_every_array_and_names():
    assert _dets() == _dets()
    assert _dets([1, 2]) == _dets([1, 2])
    assert _dets([1, 2]) != _dets([1, 3])
    assert _dets([1, 2]) != _dets()
    other = _dets()
    other.scores[1] = 0.5
    assert _dets() != other
    assert Detections.empty() == Detections.empty()
    assert _dets() != "not detections"


def test_track_ids_are_validated_sliced_and_emitted():
    d = _dets([3, 7])
    assert d.track_ids.dtype == np.int64
    assert d[1:].track_ids.tolist() == [7]
    assert d[np.array([True, False])].track_ids.tolist() == [3]
    assert [row["track_id"] for row in d.to_list()] == [3, 7]
    assert "track_id" not in _dets().to_list()[0]
    assert _dets()[0:1].track_ids is None
    with pytest.raises(ValueError, match="track_ids 3"):
        _dets([1, 2, 3])
