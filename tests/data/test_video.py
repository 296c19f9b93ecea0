"""Probing and decoding real files, with every failure kind produced for real."""

import re

import numpy as np
import pytest

from flux.data.video import FailureLog, probe, read_image, read_video, sniff_container
from flux.errors import DecodeError
from tests.media import remux, write_clip, write_corrupt, write_image, write_truncated


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("media")
    good = write_clip(root / "good.mp4", num_frames=30)
    files = {
        "good": good,
        "empty": root / "empty.mp4",
        "text": root / "page.mp4",
        "truncated": write_truncated(good, root / "cut.mp4"),
        "wrong_extension": root / "clip.webm",
        "image": write_image(root / "still.jpg"),
        "image_as_video": root / "still_as_video.mp4",
        "missing": root / "absent.mp4",
    }
    files["empty"].write_bytes(b"")
    files["text"].write_text("<html><body>404 Not Found</body></html>\n")
    files["wrong_extension"].write_bytes(good.read_bytes())
    files["image_as_video"].write_bytes(files["image"].read_bytes())
    return files


def test_good_video_probe_reports_format(media):
    result = probe(media["good"], "video")
    assert result.decodable and result.error_kind is None
    assert (result.num_frames, result.width, result.height) == (30, 64, 48)
    assert result.fps == pytest.approx(12.0) and result.duration_s == pytest.approx(2.5)


@pytest.mark.parametrize(
    "name, kind, decodable",
    [
        ("empty", "empty", False),
        ("text", "not_video", False),
        ("truncated", "truncated", False),
        ("wrong_extension", "wrong_extension", True),
        ("image_as_video", "not_video", False),
        ("missing", "missing", False),
    ],
)
def test_failure_kinds(media, name, kind, decodable):
    result = probe(media[name], "video")
    assert (result.error_kind, result.decodable) == (kind, decodable)
    assert result.error_detail


def test_a_thorough_probe_decodes_every_frame(media, tmp_path):
    corrupt = write_corrupt(write_clip(tmp_path / "long.mp4", num_frames=240), tmp_path / "mid.mp4")
    assert probe(corrupt, "video").decodable  # first and last frame decode
    result = probe(corrupt, "video", thorough=True)
    assert (result.decodable, result.error_kind) == (False, "corrupt") and "of 240 unreadable" in result.error_detail
    assert probe(media["good"], "video", thorough=True) == probe(media["good"], "video")


@pytest.fixture(scope="module")
def long_clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("long")
    good = write_clip(root / "good.mp4", num_frames=240)
    return {
        "good": good,
        "mid": write_corrupt(good, root / "mid.mp4", fraction=0.5),
        "end": write_corrupt(good, root / "end.mp4", fraction=1.0),
    }


def read_ahead_error(self, indices):
    """What decord raises at a fetch after its decoder thread read ahead into a bad packet (real text, time stamps
    included): such an error can come at any fetch, for packets the fetch does not need."""
    import decord

    raise decord.DECORDError(
        "[07:13:27] /github/workspace/src/video/ffmpeg/threaded_decoder.cc:292: [07:13:27] /github/workspace/src/video/"
        "ffmpeg/threaded_decoder.cc:218: Check failed: avcodec_send_packet(dec_ctx_.get(), pkt.get()) >= 0 "
        "(-1094995529 vs. 0) Thread worker: Error sending packet."
    )


def test_a_decord_error_is_decided_by_the_frames_the_probe_needs(long_clips, monkeypatch):
    """decord's errors depend on how far its decoder thread read ahead; with every fetch failing, the verdict is the
    one a synchronous decode of the same frames gives, and it equals the verdict of an undisturbed probe."""
    import decord

    undisturbed = {
        (name, thorough): probe(path, "video", thorough=thorough)
        for name, path in long_clips.items()
        for thorough in (False, True)
    }
    monkeypatch.setattr(decord.VideoReader, "get_batch", read_ahead_error)
    for name, path in long_clips.items():
        assert probe(path, "video") == undisturbed[name, False], name
    assert probe(long_clips["mid"], "video", thorough=True) == undisturbed["mid", True]
    assert probe(long_clips["end"], "video", thorough=True) == undisturbed["end", True]
    # every packet decodes in PyAV, so the failure is decord's own: reported as such, its time stamps left out
    mismatch = probe(long_clips["good"], "video", thorough=True)
    assert (mismatch.decodable, mismatch.error_kind) == (False, "corrupt")
    assert (
        mismatch.error_detail.startswith("decord fails, PyAV decodes every frame: /github/")
        and "[07:" not in mismatch.error_detail
    )


@pytest.mark.parametrize("extension", [".mkv", ".ts", ".flv", ".mov"])
def test_the_synchronous_decode_finds_the_last_frame_in_each_container(long_clips, extension, monkeypatch, tmp_path):
    """The last keyframe is found by demuxing: a seek near the end of an MPEG-TS or FLV file decodes nothing."""
    import decord

    path = remux(long_clips["good"], tmp_path / f"good{extension}")
    undisturbed = probe(path, "video")
    assert undisturbed.decodable and undisturbed.num_frames == 240
    monkeypatch.setattr(decord.VideoReader, "get_batch", read_ahead_error)
    assert probe(path, "video") == undisturbed


def test_where_a_file_is_corrupt_decides_its_kind(long_clips):
    """Half way: the default probe passes it and a thorough one names the first frame that fails, past the first
    keyframe interval and before the last; at the end: truncated, the last frame unreadable, whichever probe."""
    mid = probe(long_clips["mid"], "video", thorough=True)
    assert (mid.decodable, mid.error_kind) == (False, "corrupt")
    frame = int(re.fullmatch(r"frame (\d+) of 240 unreadable: .*", mid.error_detail).group(1))
    assert 24 <= frame < 216, mid.error_detail
    for thorough in (False, True):
        end = probe(long_clips["end"], "video", thorough=thorough)
        assert (end.decodable, end.error_kind, end.num_frames) == (False, "truncated", 240)
        assert end.error_detail.startswith("last frame unreadable: "), end.error_detail


def test_images(media):
    assert probe(media["image"], "image").decodable
    assert probe(media["text"], "image").error_kind == "not_image"
    assert read_image(media["image"]).shape == (1, 60, 80, 3)


def test_sniff_container_magic_bytes():
    assert sniff_container(b"\x00\x00\x00\x18ftypisom") == "isobmff"
    assert sniff_container(b"\x1a\x45\xdf\xa3rest") == "matroska"
    assert sniff_container(b"RIFF\x00\x00\x00\x00AVI LIST") == "avi"
    assert sniff_container(b"\xff\xd8\xff\xe0") == "jpeg"
    assert sniff_container(b"<html>") is None


def test_read_video_returns_the_chosen_frames(media):
    seen = {}

    def choose(num_frames, fps):
        seen.update(num_frames=num_frames, fps=fps)
        return [0, 10, 29]

    clip = read_video(media["good"], choose)
    assert clip.frames.shape == (3, 48, 64, 3) and clip.frames.dtype == np.uint8
    assert clip.indices == (0, 10, 29) and seen == {"num_frames": 30, "fps": pytest.approx(12.0)}
    # frames differ because the object moves right
    assert np.abs(clip.frames[0].astype(int) - clip.frames[2].astype(int)).mean() > 1.0


def test_trim_limits_the_frames_the_sampler_sees(media):
    clip = read_video(media["good"], lambda n, fps: [n - 1], trim_seconds=1.0)
    assert clip.num_frames == 12 and clip.indices == (11,)


@pytest.mark.parametrize(
    "name, kind", [("empty", "empty"), ("truncated", "truncated"), ("text", "not_video"), ("missing", "missing")]
)
def test_read_video_raises_classified_errors(media, name, kind):
    with pytest.raises(DecodeError) as error:
        read_video(media[name], lambda n, fps: [0])
    assert error.value.kind == kind and str(media[name]) in str(error.value)


def test_failure_log_counts_by_kind(media):
    log = FailureLog(keep=1)
    for name in ("empty", "empty", "missing"):
        with pytest.raises(DecodeError) as error:
            read_video(media[name], lambda n, fps: [0])
        log.record(error.value)
    assert log.as_dict()["counts"] == {"empty": 2, "missing": 1}
    assert log.as_dict()["examples"]["empty"] == [str(media["empty"])]
