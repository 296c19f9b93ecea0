"""The configuration's units: how the paper's frame counts, frame sides and token counts map to this
configuration's (`unit_scale`; the embedded default halves frames and quarters pixels). Read by run resolution,
evaluation protocols and the checkpoint registry alike; torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass

from flux.errors import ConfigError
from flux.models.sizes import PATCH_SIZE


@dataclass(frozen=True)
class UnitScale:
    frames: float = 1.0
    resolution: float = 1.0
    patch_size: int = PATCH_SIZE

    def frame(self, count: int) -> int:
        return max(1, round(count * self.frames))

    def pixels(self, size: int) -> int:
        """A paper-unit frame side in this configuration (a whole number of patches). The paper-unit side must be
        a whole number of patches itself: rounding 230 to 224 silently would run another input than named."""
        if size % self.patch_size:
            below = size // self.patch_size * self.patch_size
            raise ConfigError(
                f"{size} px is not a multiple of the patch size {self.patch_size}; the nearest are {below} and "
                f"{below + self.patch_size}"
            )
        return max(self.patch_size, round(size * self.resolution / self.patch_size) * self.patch_size)

    def tokens(self, count: int) -> int:
        return max(1, round(count * self.frames * self.resolution**2))
