"""Reading videos: containers and codecs, even sampling, rotation, limits, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import videos
from detector.clipmaker import moving_frames, write_clip
from detector.imaging import ImageError
from detector.video import (
    MAX_SAMPLES,
    MIN_SAMPLES,
    CorruptVideoError,
    EmptyVideoError,
    NotAVideoError,
    TruncatedVideoError,
    VideoNotFoundError,
    VideoTooLargeError,
    is_video,
    sample_frames,
    sniff,
)


def stripes(n: int, size=(320, 96)) -> list[np.ndarray]:
    """``n`` frames (at most 53) that show their number: frame k has a bright bar at x = 6k."""
    frames = []
    for k in range(n):
        frame = np.full((size[1], size[0], 3), 40, np.uint8)
        frame[:, 6 * k : 6 * k + 6] = 220
        frames.append(frame)
    return frames


def numbers(frames) -> list[int]:
    """The numbers ``stripes`` frames show."""
    return [int(np.argmax(f.rgb.mean(axis=(0, 2)))) // 6 for f in frames]


@pytest.mark.parametrize("name, fourcc", [("clip.mp4", "mp4v"), ("clip.mov", "mp4v"), ("clip.webm", "VP90"),
                                          ("clip.webm", "VP80"), ("clip.avi", "MJPG"), ("clip.mkv", "mp4v")])
def test_containers_and_codecs_opencv_writes_are_read_and_sampled_twice_a_second(tmp_path, name, fourcc):
    path = write_clip(tmp_path / name, stripes(50), fps=10, fourcc=fourcc)
    assert is_video(path)
    info, frames = sample_frames(path)
    got = list(frames)
    assert (info.width, info.height, info.fps, info.rotation) == (320, 96, 10.0, 0)
    assert info.duration_s == pytest.approx(5.0) and info.sample_fps == 2.0
    assert [f.t for f in got] == pytest.approx([0.5 * k for k in range(10)])
    assert numbers(got) == list(range(0, 50, 5))  # every fifth frame, in order
    assert all(f.rgb.dtype == np.uint8 and f.rgb.shape == (96, 320, 3) for f in got)
    assert not frames.cut_short


def test_h264_mp4_as_phones_write_it(tmp_path):
    path = videos.h264(tmp_path / "phone.mp4", stripes(40), fps=10)
    info, frames = sample_frames(path)
    assert info.codec == "h264" and numbers(frames) == list(range(0, 40, 5))


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv420p10le"], ids=["8-bit", "10-bit HDR"])
def test_hevc_mov_as_iphones_record_it(tmp_path, pix_fmt):
    path = videos.h264(tmp_path / "IMG_0001.MOV", stripes(40), fps=10, codec="libx265", pix_fmt=pix_fmt)
    info, frames = sample_frames(path)
    frames = list(frames)
    assert info.codec == "hevc" and numbers(frames) == list(range(0, 40, 5))
    assert all(abs(float(np.median(f.rgb)) - 40) < 6 for f in frames)  # the dark background stays dark


def test_animated_gif_is_a_video_and_a_still_gif_an_image(tmp_path):
    gif = videos.animated_gif(tmp_path / "loop.gif", stripes(20), ms=100)
    still = videos.animated_gif(tmp_path / "still.gif", stripes(1))
    assert is_video(gif) and not is_video(still)
    info, frames = sample_frames(gif)
    # Two seconds: too short for MIN_SAMPLES at 2 a second, so sampled faster.
    assert info.sample_fps == pytest.approx(MIN_SAMPLES / 2.0)
    assert numbers(frames) == [0, 3, 5, 8, 10, 13, 15, 18]


def test_a_long_clip_has_its_samples_spread_over_all_of_it(tmp_path):
    path = write_clip(tmp_path / "long.mp4", stripes(50), fps=10)  # 5 s
    info, frames = sample_frames(path, sample_fps=2.0, max_samples=4)
    # Four samples over 5 s: at 0, 1.25, 2.5 and 3.75 s, each the first frame at or after it.
    assert info.spread and info.sample_fps == pytest.approx(0.8) and info.scored_s == pytest.approx(5.0)
    assert numbers(frames) == [0, 13, 25, 38] and not frames.cut_short
    info, frames = sample_frames(path, sample_fps=2.0, max_samples=10)
    assert not info.spread and len(list(frames)) == 10 and not frames.cut_short
    assert MAX_SAMPLES >= 60  # the documented default scores a minute at 2 frames a second


def test_a_clip_of_unknown_length_is_scored_on_its_first_samples_and_flagged_cut_short(tmp_path):
    path = videos.h264(tmp_path / "bare.h264", stripes(50), container="h264")  # 2 s at FFmpeg's 25 fps
    info, frames = sample_frames(path, sample_fps=2.0, max_samples=3)
    assert info.duration_s is None and not info.spread
    assert numbers(frames) == [0, 13, 25] and frames.cut_short


def test_the_containers_rotation_turns_the_frames_upright(tmp_path):
    frames = []
    for _ in range(10):
        frame = np.zeros((120, 160, 3), np.uint8)
        frame[:20] = 255  # a white band along the top of the stored frame
        frames.append(frame)
    path = videos.rotated(write_clip(tmp_path / "stored.mp4", frames, fps=10), tmp_path / "portrait.mp4")
    info, sampled = sample_frames(path)
    first = next(iter(sampled))
    assert info.rotation == 90 and (info.width, info.height) == (120, 160) and first.rgb.shape == (160, 120, 3)
    # Turned a quarter clockwise: the top band is now the right-hand edge.
    assert first.rgb[:, -10:].mean() > 200 and first.rgb[:, :100].mean() < 30


def test_limits_are_checked_before_decoding(tmp_path):
    path = write_clip(tmp_path / "clip.mp4", stripes(10), fps=10)
    with pytest.raises(VideoTooLargeError, match="limit is 1,000 bytes"):
        sample_frames(path, max_bytes=1000)
    with pytest.raises(VideoTooLargeError, match="320x96 = 30,720 pixels"):
        sample_frames(path, max_pixels=320 * 90)
    with pytest.raises(ValueError, match="positive"):
        sample_frames(path, sample_fps=0)


@pytest.mark.parametrize(
    "make, error, says",
    [
        (lambda p: p.write_text("just notes, renamed\n" * 20), NotAVideoError, "is text, not a video"),
        (lambda p: p.write_text("<!doctype html><html>a page saved as .mp4</html>"), NotAVideoError, "web page"),
        (lambda p: p.write_bytes(b""), EmptyVideoError, "is empty"),
        (lambda p: p.write_bytes(np.random.default_rng(0).bytes(4000)), NotAVideoError, "not a recognised video"),
        (lambda p: videos.audio_only(p), CorruptVideoError, "no video stream"),
    ],
    ids=["text", "html", "empty", "random-bytes", "audio-only"],
)
def test_files_that_are_not_videos_get_a_typed_error_naming_them(tmp_path, make, error, says):
    path = tmp_path / "clip.mp4"
    make(path)
    assert is_video(path)  # named like a video and not an image: a video's error, not an image's
    with pytest.raises(error, match=says) as caught:
        sample_frames(path)
    assert isinstance(caught.value, ImageError) and "'" + str(path) + "'" in str(caught.value)


def test_a_truncated_mp4_and_a_missing_file(tmp_path):
    whole = write_clip(tmp_path / "whole.mp4", stripes(30), fps=10)
    with pytest.raises(TruncatedVideoError, match="incomplete or damaged MP4"):
        sample_frames(videos.truncated(whole, tmp_path / "cut.mp4"))
    with pytest.raises(VideoNotFoundError, match="does not exist"):
        sample_frames(tmp_path / "nowhere.mp4")
    with pytest.raises(NotAVideoError, match="folder"):
        sample_frames(tmp_path)


def test_a_truncated_avi_gives_the_frames_before_the_cut(tmp_path):
    whole = write_clip(tmp_path / "whole.avi", stripes(40), fps=10, fourcc="MJPG")
    info, frames = sample_frames(videos.truncated(whole, tmp_path / "cut.avi", keep=0.5))
    got = numbers(frames)
    assert 0 < len(got) < 8 and got == list(range(0, 5 * len(got), 5))
    assert frames.last_t < info.duration_s - 1.0


def test_sniff_tells_containers_from_images_by_content(tmp_path):
    mp4 = write_clip(tmp_path / "a.mp4", stripes(2), fps=10).read_bytes()[:64]
    assert sniff(mp4) == "video" and sniff(b"\x1a\x45\xdf\xa3" + bytes(60)) == "video"
    assert sniff(b"RIFF\0\0\0\0AVI LIST") == "video" and sniff(b"GIF89a....") == "gif"
    assert sniff(b"\xff\xd8\xff\xe0") == "image" and sniff(b"\0\0\0\x18ftypheic") == "image"
    assert sniff(b"\0\0\0\x1cftypavif") == "image" and sniff(b"\0\0\0\x1cftypavis") == "image"  # an animated AVIF: its first frame
    assert sniff(b"hello") is None
    jpeg_named_mp4 = tmp_path / "photo.mp4"
    jpeg_named_mp4.write_bytes(b"\xff\xd8\xff\xe0" + bytes(100))
    assert not is_video(jpeg_named_mp4)  # the content decides: scored (or refused) as an image


def test_frames_are_read_lazily_one_at_a_time(tmp_path):
    path = write_clip(tmp_path / "clip.mp4", moving_frames(np.full((120, 160, 3), 128, np.uint8), 40), fps=10)
    _, frames = sample_frames(path)
    iterator = iter(frames)
    first = next(iterator)
    assert first.index == 0 and first.t == 0.0
    frames.close()  # stops early and frees the file
