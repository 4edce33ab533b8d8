"""Detections: the one numpy-backed result type every stage passes along."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np


@dataclass
class Detections:
    """Boxes in frame pixels (xyxy float32), scores, class ids and their names."""

    xyxy: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        self.class_ids = np.asarray(self.class_ids, dtype=np.int64).reshape(-1)
        n = len(self.xyxy)
        if len(self.scores) != n or len(self.class_ids) != n or len(self.names) not in (0, n):
            raise ValueError(
                f"Detections fields disagree in length: xyxy {n}, scores {len(self.scores)}, "
                f"class_ids {len(self.class_ids)}, names {len(self.names)}"
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
        return Detections(self.xyxy[idx], self.scores[idx], self.class_ids[idx], names)

    def __iter__(self) -> Iterator[tuple[np.ndarray, float, int, str]]:
        for i in range(len(self)):
            yield self.xyxy[i], float(self.scores[i]), int(self.class_ids[i]), self.names[i] if self.names else ""

    def to_list(self, ndigits: int = 3) -> list[dict]:
        """JSON-ready list of {class_id, name, score, box}."""
        return [
            {
                "class_id": int(c),
                "name": self.names[i] if self.names else str(int(c)),
                "score": round(float(s), 5),
                "box": [round(float(v), ndigits) for v in b],
            }
            for i, (b, s, c) in enumerate(zip(self.xyxy, self.scores, self.class_ids))
        ]
