"""What the model space needs to know about a dataset."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetInfo:
    """What proposing needs to know about a registered dataset."""

    id: str
    input_shape: tuple[int, int, int]
    classes: tuple[str, ...]
    #: Whether a horizontal flip keeps the class (recorded with the dataset; False if unknown).
    hflip: bool = False
    #: Training images (0 when unknown).
    train_size: int = 0

    @property
    def num_classes(self) -> int:
        return len(self.classes)
