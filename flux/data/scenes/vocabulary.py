"""The synthetic scenes' vocabulary (motions = classes, shapes, colours, textures, backgrounds, frame sizes) and
the records a scene is built from (Appearance, VideoFormat, SceneSpec)."""

from __future__ import annotations

from dataclasses import dataclass, fields

MOTIONS: tuple[str, ...] = (
    "moving left",
    "moving right",
    "moving up",
    "moving down",
    "creeping right",
    "dashing right",
    "rotating clockwise",
    "rotating counterclockwise",
    "growing",
    "shrinking",
    "appearing",
    "disappearing",
    "bouncing",
    "orbiting",
    "blinking",
    "staying still",
)

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "diamond", "cross", "hexagon")

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (245, 215, 40),
    "cyan": (40, 205, 215),
    "magenta": (215, 45, 195),
    "orange": (245, 135, 25),
    "purple": (125, 55, 185),
    "pink": (250, 155, 185),
    "brown": (125, 80, 40),
    "grey": (128, 128, 128),
    "white": (240, 240, 240),
    "black": (20, 20, 20),
}

# Bumped whenever the same scene spec renders different pixels: it is part of every synthetic dataset's
# job spec, so Snakemake regenerates the data (and retrains what learned from it) after such a change.
RENDER_VERSION = 2

TEXTURES: tuple[str, ...] = ("solid", "striped", "checkered", "dotted")

BACKGROUNDS: tuple[str, ...] = ("plain", "gradient", "noise", "grid")

# (width, height): short side 112-168, mostly landscape, one portrait.
DEFAULT_SIZES: tuple[tuple[int, int], ...] = (
    (160, 120),
    (176, 144),
    (192, 144),
    (224, 168),
    (208, 160),
    (150, 112),
    (144, 176),
)

SIZE_RANGE = (0.22, 0.36)  # object extent (circumscribed diameter) as a fraction of min(H, W)
_MIN_CONTRAST = 120.0  # RGB distance between the object colour and any background colour
_SCALE_MIN, _SCALE_MAX = 0.3, 1.3  # object scale limits (1 = Appearance.size)

# RNG stream tags (second word of the seed sequence)
_STREAM_MOTION, _STREAM_BACKGROUND, _STREAM_DISTRACTORS, _STREAM_POSE = 1, 2, 3, 4


@dataclass(frozen=True)
class Appearance:
    shape: str
    colour: str
    texture: str
    background: str
    background_colours: tuple[str, str]
    size: float
    distractors: int

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"Appearance.shape {self.shape!r} is not one of {SHAPES}")
        if self.colour not in COLOURS:
            raise ValueError(f"Appearance.colour {self.colour!r} is not one of {tuple(COLOURS)}")
        if self.texture not in TEXTURES:
            raise ValueError(f"Appearance.texture {self.texture!r} is not one of {TEXTURES}")
        if self.background not in BACKGROUNDS:
            raise ValueError(f"Appearance.background {self.background!r} is not one of {BACKGROUNDS}")
        bgc = tuple(self.background_colours)
        object.__setattr__(self, "background_colours", bgc)
        if len(bgc) != 2 or any(c not in COLOURS for c in bgc):
            raise ValueError(f"Appearance.background_colours {bgc!r} must be two names from {tuple(COLOURS)}")
        if self.colour in bgc:
            raise ValueError(f"Appearance.background_colours {bgc!r} must differ from the object colour {self.colour!r}")
        if not (0.05 <= float(self.size) <= 0.6):
            raise ValueError(f"Appearance.size {self.size!r} must lie in [0.05, 0.6] (fraction of min(H, W))")
        if not (0 <= int(self.distractors) <= 4) or int(self.distractors) != self.distractors:
            raise ValueError(f"Appearance.distractors {self.distractors!r} must be an integer in [0, 4]")


@dataclass(frozen=True)
class VideoFormat:
    width: int
    height: int
    fps: int
    num_frames: int

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if int(v) != v or v <= 0:
                raise ValueError(f"VideoFormat.{f.name} must be a positive integer, got {v!r}")
        if self.width % 2 or self.height % 2:
            raise ValueError(f"VideoFormat width/height must be even (yuv420p), got {self.width}x{self.height}")
        if min(self.width, self.height) < 16:
            raise ValueError(f"VideoFormat {self.width}x{self.height} is too small (min side 16)")


@dataclass(frozen=True)
class SceneSpec:
    motions: tuple[str, ...]
    appearance: Appearance
    video: VideoFormat
    seed: int

    def __post_init__(self) -> None:
        motions = (self.motions,) if isinstance(self.motions, str) else tuple(self.motions)
        object.__setattr__(self, "motions", motions)
        if not motions:
            raise ValueError("SceneSpec.motions must name at least one motion")
        bad = [m for m in motions if m not in MOTIONS]
        if bad:
            raise ValueError(f"SceneSpec.motions {bad!r} are not in MOTIONS {MOTIONS}")
        if int(self.seed) != self.seed or self.seed < 0:
            raise ValueError(f"SceneSpec.seed must be a non-negative integer, got {self.seed!r}")
