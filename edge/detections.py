"""Detections: the one numpy-backed result type every stage passes along."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Optional, Sequence

import numpy as np


@dataclass(eq=False)
class Detections:
    """Boxes in frame pixels (xyxy float32), scores, class ids, their names and (after tracking) track ids."""

    xyxy: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    names: list[str] = field(default_factory=list)
    track_ids: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        self.class_ids = np.asarray(self.class_ids, dtype=np.int64).reshape(-1)
        if self.track_ids is not None:
            self.track_ids = np.asarray(self.track_ids, dtype=np.int64).reshape(-1)
        n = len(self.xyxy)
        n_tracks = n if self.track_ids is None else len(self.track_ids)
        if len(self.scores) != n or len(self.class_ids) != n or len(self.names) not in (0, n) or n_tracks != n:
            raise ValueError(
                f"Detections fields disagree in length: xyxy {n}, scores {len(self.scores)}, "
                f"class_ids {len(self.class_ids)}, names {len(self.names)}, track_ids {n_tracks}"
            )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Detections):
            return NotImplemented
        same_tracks = (self.track_ids is None) == (other.track_ids is None) and (
            self.track_ids is None or other.track_ids is None or np.array_equal(self.track_ids, other.track_ids)
        )
        return (
            np.array_equal(self.xyxy, other.xyxy)
            and np.array_equal(self.scores, other.scores)
            and np.array_equal(self.class_ids, other.class_ids)
            and list(self.names) == list(other.names)
            and same_tracks
        )

    @classmethod
    def empty(cls) -> "Detections":
        """No detections."""
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), [])

    @classmethod
    def from_arrays(
        cls, xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, class_names: Sequence[str]
    ) -> "Detections":
        """Build Detections, looking each class id up in the model's class-name table."""
        names = [class_names[c] if 0 <= c < len(class_names) else str(c) for c in class_ids.tolist()]
        return cls(xyxy, scores, class_ids, names)

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index) -> "Detections":
        idx = np.arange(len(self))[index]
        idx = np.atleast_1d(idx)
        names = [self.names[i] for i in idx.tolist()] if self.names else []
        tracks = None if self.track_ids is None else self.track_ids[idx]
        return Detections(self.xyxy[idx], self.scores[idx], self.class_ids[idx], names, tracks)

    def __iter__(self) -> Iterator[tuple[np.ndarray, float, int, str]]:
        for i in range(len(self)):
            yield self.xyxy[i], float(self.scores[i]), int(self.class_ids[i]), self.names[i] if self.names else ""

    def to_list(self, ndigits: int = 3) -> list[dict]:
        """JSON-ready list of {class_id, name, score, box} plus track_id once tracked."""
        rows = [
            {
                "class_id": int(c),
                "name": self.names[i] if self.names else str(int(c)),
                "score": round(float(s), 5),
                "box": [round(float(v), ndigits) for v in b],
            }
            for i, (b, s, c) in enumerate(zip(self.xyxy, self.scores, self.class_ids))
        ]
        if self.track_ids is not None:
            for row, t in zip(rows, self.track_ids.tolist()):
                row["track_id"] = t
        return rows
