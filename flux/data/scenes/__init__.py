"""Procedural renderer for the synthetic datasets of the embedded (CPU) default: vocabulary and records, appearance
sampling, shapes, backgrounds and distractors, motion planning, rendering, captions and encoding, one module each.

Every synthetic video shows one textured object (plus 0-2 static distractor shapes) on a static
background. The CLASS of a video is carried by the object's MOTION; its appearance (shape, colour,
texture, background, size, distractors) is sampled independently of the class, so a model has to
use temporal information to classify, and frame-difference token selection sees the changing pixels
concentrate on the object. `typical_appearance` gives each motion a fixed object and background, for
datasets that mimic the object/scene bias of Kinetics-like classes (see synthetic.appearance_bias).

Conventions
-----------
* Image coordinates: x grows to the right, y grows downwards, a pixel ``(i, j)`` covers
  ``[j, j+1) x [i, i+1)`` so its centre is ``(j + 0.5, i + 0.5)``.
* Angles are in image space, so a POSITIVE angle increment is a CLOCKWISE turn as the viewer sees
  it. "left", "right", "up", "down" are image-space directions, so a horizontal flip of a
  rendered "moving left" video is a "moving right" video and clockwise becomes counterclockwise.
* Motions are functions of normalised time ``u = t / (T - 1)`` in [0, 1] over the whole video (or
  over each step's equal share for multi-step videos), so the class can be read off ~4-8 frames
  sampled uniformly whatever the clip's length or frame rate.
* All randomness flows from ``SceneSpec.seed`` through ``np.random.default_rng([seed, stream])``;
  no global RNG is touched. Motion, background and distractors use separate streams, so the same
  seed with another motion keeps the same background and distractors.

The object's free range along an axis is the span its centre can take while the whole object
(at its largest size in the video) stays inside the frame. Displacements are fractions of it:
"creeping right" 12-20 %, "moving left/right/up/down" 42-60 %, "dashing right" 85-100 %.
"""

from __future__ import annotations

from flux.data.scenes.captions import describe_object, image_captions, video_captions
from flux.data.scenes.encode import write_jpeg, write_mp4
from flux.data.scenes.render import render_background, render_image, render_video
from flux.data.scenes.sampling import sample_appearance, sample_video_format, typical_appearance
from flux.data.scenes.vocabulary import (
    BACKGROUNDS,
    COLOURS,
    DEFAULT_SIZES,
    MOTIONS,
    RENDER_VERSION,
    SHAPES,
    TEXTURES,
    Appearance,
    SceneSpec,
    VideoFormat,
)

__all__ = [
    "RENDER_VERSION",
    "MOTIONS",
    "SHAPES",
    "COLOURS",
    "TEXTURES",
    "BACKGROUNDS",
    "DEFAULT_SIZES",
    "Appearance",
    "VideoFormat",
    "SceneSpec",
    "sample_appearance",
    "typical_appearance",
    "sample_video_format",
    "render_video",
    "render_background",
    "render_image",
    "describe_object",
    "video_captions",
    "image_captions",
    "write_mp4",
    "write_jpeg",
]
