"""Synthetic videos built to need one modulator each, written in the DAVIS 2017 layout.

The paper's Table 3 says the visual modulator picks out the annotated object (52.5 -> 33.0 J
without it) and the spatial modulator keeps track of it among similar objects (52.5 -> 40.1).
COCO and DAVIS are out of reach on a CPU, so `benchmarks/ablation.py` tests those claims on two
families of generated videos:

* **distractor**: the target (object id 1) plus 1-3 objects of OTHER appearance (other shape,
  texture pattern and hue) that move close to it, cross it and partly occlude it. Where the
  target is its previous frame's guide says nothing about which of the overlapping objects to
  keep; its appearance does: this needs the visual modulator.
* **twin**: the target plus a pixel-identical twin (the same sprite, scale and rotation in every
  frame, only the position differs) moving elsewhere, at times near it. Appearance cannot tell
  them apart; the previous position can: this needs the spatial modulator.

Each object is a textured shape (ellipse, rectangle, triangle, star, cross, hexagon; stripes,
checker, dots, rings or blotches in two colours) that translates (bouncing off the borders),
changes scale and rotates a little, over a textured background (smoothed colour noise plus
stripes) that pans slowly. Objects are drawn in a per-video depth order, so they occlude each
other; masks follow the same order (each pixel belongs to the topmost object).

Determinism: video `i` of family `f` under seed `s` is a function of (s, f, i) alone (a numpy
`Generator` seeded with `[s, f, i]`); sets made with different seeds share no video, which is how
`benchmarks/ablation.py` keeps its training and evaluation sets disjoint.

Layout written by `write_davis` (DAVIS 2017, what `osmn.data.davis` and the evaluation read):

    ROOT/JPEGImages/480p/<seq>/00000.jpg ...
    ROOT/Annotations/480p/<seq>/00000.png ...   palette PNGs, DAVIS palette, ids 1..K, 0 = bg
    ROOT/ImageSets/2017/<split>.txt             one sequence name per line

With `annotate="target"` only the target (id 1) is annotated (evaluation sets: the others are
background to be ignored); with `annotate="all"` every object is (training sets: each object in
turn is a training target, the others its distractors or twin).

The sizes are the project's choice for CPU-scale experiments, not numbers of the paper.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw

from osmn.config import SYNTHETIC_ANNOTATE, SYNTHETIC_FAMILIES
from osmn.errors import UserError
from osmn.io import atomic_dir, davis_palette  # noqa: F401 (davis_palette: re-exported)

FAMILIES: Tuple[str, ...] = SYNTHETIC_FAMILIES
SHAPES: Tuple[str, ...] = ("ellipse", "rectangle", "triangle", "star", "cross", "hexagon")
PATTERNS: Tuple[str, ...] = ("stripes", "checker", "dots", "rings", "blotches")
ANNOTATE: Tuple[str, ...] = SYNTHETIC_ANNOTATE
TARGET_ID = 1
RESOLUTION = "480p"  # DAVIS folder name; the frames keep their own (small) size.
JPEG_QUALITY = 95

# Defaults chosen so that a narrow OSMN trains on 2 CPU cores in minutes (project choice).
DEFAULT_HEIGHT = 128
DEFAULT_WIDTH = 224
DEFAULT_FRAMES = 16
MIN_SIZE = 32  # the smallest frame side the model accepts (`TrainConfig.validate`).
MAX_SIZE = 1080

_SPRITE = 64  # side of the canonical sprite; shapes fit in its inscribed circle.
_RADIUS_RANGE = (0.13, 0.19)  # object radius as a fraction of min(height, width).
_SPEED_RANGE = (0.012, 0.03)  # px per frame as a fraction of min(height, width).
_SCALE_WOBBLE = 0.15  # radius x (1 +- 0.15) over a sinusoid.
_SCALE_DRIFT = 0.15  # and x U(1 - 0.15, 1 + 0.15) linearly over the video.
_MAX_SPIN_DEG = 3.0  # rotation per frame, U(-3, 3) degrees.
_MIN_TARGET_VISIBLE = 0.4  # the target keeps >= 40% of its own pixels in every frame.
_TWIN_START_GAP = 3.0  # twins start at least 3 radii apart (centre to centre).
_MAX_TRIES = 200  # re-draws of a video's motion until the constraints above hold.
_FAMILY_TAG = {"distractor": 1, "twin": 2}


@dataclasses.dataclass(frozen=True)
class Appearance:
    """How one object looks: shape and two-colour texture.

    Attributes:
        shape: one of SHAPES.
        pattern: one of PATTERNS.
        hue: float in [0, 1), hue of the main colour (distinct appearances differ in it).
        sprite_rgb: [S, S, 3] uint8, the texture over the whole canonical sprite.
        sprite_mask: [S, S] bool, the shape.
    """

    shape: str
    pattern: str
    hue: float
    sprite_rgb: np.ndarray
    sprite_mask: np.ndarray


@dataclasses.dataclass(frozen=True)
class Track:
    """Per-frame pose of one object: centre [T, 2] (x, y) px, radius [T] px, angle [T] degrees."""

    centre: np.ndarray
    radius: np.ndarray
    angle: np.ndarray


@dataclasses.dataclass(frozen=True)
class SyntheticVideo:
    """One generated video.

    Attributes:
        name: sequence name, `<family>-s<seed>-<index>`.
        family: "distractor" or "twin".
        frames: [T, H, W, 3] uint8 RGB.
        labels: [T, H, W] uint8, 0 background, 1 the target, 2..K the other objects.
        num_objects: K.
        twin_id: id of the target's twin (twin family) or None.
    """

    name: str
    family: str
    frames: np.ndarray
    labels: np.ndarray
    num_objects: int
    twin_id: Optional[int] = None


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    i = int(h * 6.0) % 6
    f = h * 6.0 - math.floor(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return np.asarray(rgb, np.float32) * 255.0


def _shape_mask(rng: np.random.Generator, shape: str) -> np.ndarray:
    """[S, S] bool: `shape` inside the sprite's inscribed circle, random aspect."""
    s = _SPRITE
    c = (s - 1) / 2.0
    r = 0.46 * s
    aspect = rng.uniform(0.6, 1.0)  # the short axis as a fraction of the long one
    image = Image.new("L", (s, s), 0)
    draw = ImageDraw.Draw(image)
    if shape == "ellipse":
        draw.ellipse([c - r, c - r * aspect, c + r, c + r * aspect], fill=255)
    elif shape == "rectangle":
        a = r / math.sqrt(1 + aspect ** 2)
        draw.rectangle([c - a, c - a * aspect, c + a, c + a * aspect], fill=255)
    elif shape == "cross":
        a, b = r * 0.95, r * 0.38 * (0.7 + 0.3 * aspect)
        draw.rectangle([c - a, c - b, c + a, c + b], fill=255)
        draw.rectangle([c - b, c - a, c + b, c + a], fill=255)
    else:
        if shape == "triangle":
            radii, n = [r], 3
        elif shape == "hexagon":
            radii, n = [r], 6
        elif shape == "star":
            radii, n = [r, r * rng.uniform(0.4, 0.55)], 10
        else:
            raise ValueError(f"unknown shape {shape!r}")
        start = rng.uniform(0, 2 * math.pi)
        points = [(c + radii[k % len(radii)] * math.cos(start + 2 * math.pi * k / n),
                   c + radii[k % len(radii)] * math.sin(start + 2 * math.pi * k / n))
                  for k in range(n)]
        draw.polygon(points, fill=255)
    return np.asarray(image) > 127


def _pattern(rng: np.random.Generator, pattern: str, size: int) -> np.ndarray:
    """[size, size] float32 in [0, 1]: where the second colour shows."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    period = rng.uniform(0.15, 0.35) * size
    theta = rng.uniform(0, math.pi)
    u = x * math.cos(theta) + y * math.sin(theta)
    v = -x * math.sin(theta) + y * math.cos(theta)
    if pattern == "stripes":
        return (np.sin(2 * math.pi * u / period) > 0).astype(np.float32)
    if pattern == "checker":
        return ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)
    if pattern == "dots":
        fu, fv = (u / period) % 1.0 - 0.5, (v / period) % 1.0 - 0.5
        return (fu ** 2 + fv ** 2 < 0.09).astype(np.float32)
    if pattern == "rings":
        c = (size - 1) / 2.0
        return (np.sin(2 * math.pi * np.hypot(x - c, y - c) / period) > 0).astype(np.float32)
    if pattern == "blotches":
        return _smooth_noise(rng, size, size, 1, cells=4)[..., 0]
    raise ValueError(f"unknown pattern {pattern!r}")


def _smooth_noise(rng: np.random.Generator, height: int, width: int, channels: int,
                  cells: int) -> np.ndarray:
    """[height, width, channels] float32 in [0, 1]: noise on a coarse grid, bicubic upsampled."""
    gh, gw = max(2, height * cells // max(height, width)), max(2, width * cells // max(height, width))
    out = np.empty((height, width, channels), np.float32)
    for k in range(channels):
        coarse = rng.uniform(0, 255, (gh, gw)).astype(np.float32)
        image = Image.fromarray(coarse, mode="F").resize((width, height), Image.BICUBIC)
        out[..., k] = np.clip(np.asarray(image) / 255.0, 0.0, 1.0)
    return out


def random_appearance(rng: np.random.Generator,
                      unlike: Sequence[Appearance] = ()) -> Appearance:
    """A textured shape whose shape, pattern and hue all differ from every one in `unlike`."""
    shapes = [s for s in SHAPES if all(s != a.shape for a in unlike)] or list(SHAPES)
    patterns = [p for p in PATTERNS if all(p != a.pattern for a in unlike)] or list(PATTERNS)
    shape = shapes[rng.integers(len(shapes))]
    pattern = patterns[rng.integers(len(patterns))]
    for _ in range(_MAX_TRIES):  # hue at least 0.2 of the colour circle from the others
        hue = float(rng.uniform(0, 1))
        if all(min(abs(hue - a.hue), 1 - abs(hue - a.hue)) >= 0.2 for a in unlike):
            break
    main = _hsv_to_rgb(hue, rng.uniform(0.6, 1.0), rng.uniform(0.6, 1.0))
    second = _hsv_to_rgb((hue + rng.uniform(0.3, 0.7)) % 1.0, rng.uniform(0.3, 1.0),
                         rng.uniform(0.2, 0.9))
    weight = _pattern(rng, pattern, _SPRITE)[..., None]
    texture = main * (1 - weight) + second * weight
    texture = texture + rng.normal(0, 6.0, texture.shape)  # a little grain
    rgb = np.clip(np.round(texture), 0, 255).astype(np.uint8)
    return Appearance(shape, pattern, hue, rgb, _shape_mask(rng, shape))


def render_sprite(appearance: Appearance, radius: float,
                  angle: float) -> Tuple[np.ndarray, np.ndarray]:
    """The object at a pose: ([h, w, 3] uint8 RGB, [h, w] bool mask), centred in the arrays.

    Deterministic in (appearance, radius, angle): twins get identical pixels.
    """
    side = max(3, int(round(2 * radius * _SPRITE / (0.92 * _SPRITE))))
    rgb = Image.fromarray(appearance.sprite_rgb).resize((side, side), Image.BILINEAR)
    mask = Image.fromarray(appearance.sprite_mask.astype(np.uint8) * 255).resize(
        (side, side), Image.NEAREST)
    rgb = rgb.rotate(angle, Image.BILINEAR, expand=True)
    mask = mask.rotate(angle, Image.NEAREST, expand=True)
    return np.asarray(rgb), np.asarray(mask) > 127


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """[height, width, 3] float32 0..255: smoothed colour noise under stripes and fine grain."""
    low = _hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.1, 0.6), rng.uniform(0.2, 0.6))
    high = _hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.1, 0.6), rng.uniform(0.5, 0.95))
    noise = _smooth_noise(rng, height, width, 3, cells=int(rng.integers(4, 10)))
    image = low + (high - low) * noise
    stripes = _pattern(rng, "stripes", max(height, width))[:height, :width, None]
    stripe_colour = _hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.2, 0.8), rng.uniform(0.3, 0.9))
    alpha = rng.uniform(0.15, 0.45)
    image = image * (1 - alpha * stripes) + stripe_colour * alpha * stripes
    return np.clip(image + rng.normal(0, 4.0, image.shape), 0, 255).astype(np.float32)


def _bounce(start: np.ndarray, velocity: np.ndarray, frames: int, low: np.ndarray,
            high: np.ndarray) -> np.ndarray:
    """[frames, 2] positions moving at `velocity`, reflected at the box [low, high]."""
    span = np.maximum(high - low, 1e-3)
    raw = (start - low)[None] + velocity[None] * np.arange(frames)[:, None]
    folded = np.mod(raw, 2 * span)
    return low + np.where(folded > span, 2 * span - folded, folded)


def _random_track(rng: np.random.Generator, frames: int, height: int, width: int,
                  radius0: float) -> Track:
    scale = min(height, width)
    t = np.arange(frames, dtype=np.float64)
    wobble = 1 + _SCALE_WOBBLE * np.sin(2 * math.pi * t / rng.uniform(8, 24)
                                        + rng.uniform(0, 2 * math.pi))
    drift = np.linspace(1.0, rng.uniform(1 - _SCALE_DRIFT, 1 + _SCALE_DRIFT), frames)
    radius = radius0 * wobble * drift
    margin = radius.max() * 0.8
    low, high = np.array([margin, margin]), np.array([width - margin, height - margin])
    speed = rng.uniform(*_SPEED_RANGE) * scale
    heading = rng.uniform(0, 2 * math.pi)
    start = rng.uniform(low, high)
    centre = _bounce(start, speed * np.array([math.cos(heading), math.sin(heading)]),
                     frames, low, high)
    angle = rng.uniform(-20, 20) + rng.uniform(-_MAX_SPIN_DEG, _MAX_SPIN_DEG) * t
    return Track(centre, radius, angle)


def _near_track(rng: np.random.Generator, target: Track, frames: int, height: int,
                width: int, radius0: float) -> Track:
    """A track that circles the target at 0.5-1.6 x the sum of radii: it crosses and occludes."""
    own = _random_track(rng, frames, height, width, radius0)
    t = np.arange(frames, dtype=np.float64)
    reach = target.radius + own.radius
    distance = reach * (1.05 + 0.55 * np.cos(2 * math.pi * t / rng.uniform(10, 30)
                                            + rng.uniform(-0.5, 0.5)))
    phase = rng.uniform(0, 2 * math.pi) + rng.choice([-1, 1]) * rng.uniform(0.05, 0.2) * t
    centre = target.centre + distance[:, None] * np.stack([np.cos(phase), np.sin(phase)], 1)
    margin = own.radius.max() * 0.8
    centre = np.clip(centre, margin, [width - margin, height - margin])
    return Track(centre, own.radius, own.angle)


def _paste(canvas: np.ndarray, labels: np.ndarray, rgb: np.ndarray, mask: np.ndarray,
           centre: np.ndarray, label: int) -> None:
    """Draw a sprite centred at `centre` (x, y) into canvas [H, W, 3] and labels [H, W]."""
    h, w = mask.shape
    top = int(round(centre[1] - h / 2.0))
    left = int(round(centre[0] - w / 2.0))
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + h, canvas.shape[0]), min(left + w, canvas.shape[1])
    if y0 >= y1 or x0 >= x1:
        return
    m = mask[y0 - top:y1 - top, x0 - left:x1 - left]
    canvas[y0:y1, x0:x1][m] = rgb[y0 - top:y1 - top, x0 - left:x1 - left][m]
    labels[y0:y1, x0:x1][m] = label


def _object_area(appearance: Appearance, track: Track, frame: int, height: int,
                 width: int) -> int:
    """Pixels of one object alone in the frame (no occluder)."""
    _, mask = render_sprite(appearance, track.radius[frame], track.angle[frame])
    labels = np.zeros((height, width), np.uint8)
    _paste(np.zeros((height, width, 3), np.uint8), labels,
           np.zeros(mask.shape + (3,), np.uint8), mask, track.centre[frame], 1)
    return int(labels.sum())


def _render(background: np.ndarray, pan: np.ndarray, objects, order, height: int,
            width: int) -> Tuple[np.ndarray, np.ndarray]:
    frames = len(pan)
    video = np.empty((frames, height, width, 3), np.uint8)
    labels = np.zeros((frames, height, width), np.uint8)
    for t in range(frames):
        x, y = int(pan[t, 0]), int(pan[t, 1])
        canvas = np.array(np.round(background[y:y + height, x:x + width]), np.uint8)
        for k in order:  # bottom to top
            appearance, track = objects[k]
            rgb, mask = render_sprite(appearance, track.radius[t], track.angle[t])
            _paste(canvas, labels[t], rgb, mask, track.centre[t], k + 1)
        video[t] = canvas
    return video, labels


def _constraints_hold(labels: np.ndarray, objects, height: int, width: int) -> bool:
    """Every object wholly visible (unoccluded) in frame 0, so each first-frame annotation is
    the whole object; the target keeps >= _MIN_TARGET_VISIBLE of itself in every frame."""
    for k, (appearance, track) in enumerate(objects):
        alone = _object_area(appearance, track, 0, height, width)
        if alone == 0 or int((labels[0] == k + 1).sum()) < alone:
            return False
    appearance, track = objects[0]
    for t in range(1, labels.shape[0]):
        alone = _object_area(appearance, track, t, height, width)
        if alone == 0 or (labels[t] == TARGET_ID).sum() < _MIN_TARGET_VISIBLE * alone:
            return False
    return True


def _check_arguments(family: str, frames: int, height: int, width: int) -> None:
    if family not in FAMILIES:
        raise UserError(f"family must be one of {', '.join(FAMILIES)}, got {family!r}")
    if not isinstance(frames, (int, np.integer)) or frames < 2:
        raise UserError(f"frames must be an integer >= 2, got {frames!r}")
    for name, value in (("height", height), ("width", width)):
        if not isinstance(value, (int, np.integer)) or not MIN_SIZE <= value <= MAX_SIZE:
            raise UserError(f"{name} must be an integer in [{MIN_SIZE}, {MAX_SIZE}], "
                            f"got {value!r}")


def video_name(family: str, seed: int, index: int) -> str:
    """Sequence name of video `index` of `family` under `seed`, e.g. 'twin-s7-003'."""
    return f"{family}-s{seed}-{index:03d}"


def generate_video(family: str, seed: int, index: int, frames: int = DEFAULT_FRAMES,
                   height: int = DEFAULT_HEIGHT, width: int = DEFAULT_WIDTH) -> SyntheticVideo:
    """Video `index` of `family` under `seed` (a pure function of its arguments).

    Args:
        family: "distractor" or "twin".
        seed: int >= 0. Sets made with different seeds are disjoint.
        index: int >= 0, the video's number in its set.
        frames, height, width: video length and frame size (px).

    Returns:
        SyntheticVideo with frames [T, H, W, 3] uint8 and labels [T, H, W] uint8 (all objects).

    Raises:
        UserError: bad family or sizes.
    """
    _check_arguments(family, frames, height, width)
    rng = np.random.default_rng([int(seed), _FAMILY_TAG[family], int(index)])
    scale = min(height, width)
    pad = int(math.ceil(frames * 1.0)) + 2  # background pans at most 1 px per frame
    background = _background(rng, height + 2 * pad, width + 2 * pad)
    pan_velocity = rng.uniform(-1.0, 1.0, 2)
    pan = np.round(pad + pan_velocity[None] * np.arange(frames)[:, None]).astype(int)
    target = random_appearance(rng)
    appearances = [target]
    twin_id = None
    if family == "distractor":
        for _ in range(int(rng.integers(1, 4))):
            appearances.append(random_appearance(rng, unlike=appearances))
    else:
        appearances.append(target)
        twin_id = 2
    for _ in range(_MAX_TRIES):
        radius0 = rng.uniform(*_RADIUS_RANGE) * scale
        target_track = _random_track(rng, frames, height, width, radius0)
        tracks = [target_track]
        for k in range(1, len(appearances)):
            if family == "twin":
                # The twin: its own path, the target's radius and angle in every frame.
                own = _random_track(rng, frames, height, width, radius0)
                gap = np.hypot(*(own.centre[0] - target_track.centre[0]))
                if gap < _TWIN_START_GAP * radius0:
                    break  # too close at the start: draw again
                tracks.append(Track(own.centre, target_track.radius, target_track.angle))
            elif k == 1 or rng.uniform() < 0.5:
                tracks.append(_near_track(rng, target_track, frames, height, width,
                                          rng.uniform(*_RADIUS_RANGE) * scale * 0.85))
            else:
                tracks.append(_random_track(rng, frames, height, width,
                                            rng.uniform(*_RADIUS_RANGE) * scale))
        if len(tracks) < len(appearances):
            continue
        objects = list(zip(appearances, tracks))
        order = list(rng.permutation(len(objects)))
        video, labels = _render(background, pan, objects, order, height, width)
        if _constraints_hold(labels, objects, height, width):
            break
    else:  # pragma: no cover - the draw above succeeds within a few tries at sane sizes
        raise UserError(f"could not place the objects of {video_name(family, seed, index)} "
                        f"in a {width}x{height} frame; use a larger frame")
    return SyntheticVideo(video_name(family, seed, index), family, video, labels,
                          len(objects), twin_id)


def generate_videos(family: str, num_videos: int, seed: int, frames: int = DEFAULT_FRAMES,
                    height: int = DEFAULT_HEIGHT, width: int = DEFAULT_WIDTH,
                    progress: bool = False) -> List[SyntheticVideo]:
    """Videos 0..num_videos-1 of `family` under `seed` (see `generate_video`)."""
    _check_arguments(family, frames, height, width)
    if not isinstance(num_videos, (int, np.integer)) or num_videos < 1:
        raise UserError(f"num_videos must be a positive integer, got {num_videos!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UserError(f"seed must be an integer >= 0, got {seed!r}")
    bar = None
    if progress:
        from osmn.progress import Progbar  # noqa: PLC0415
        bar = Progbar(num_videos, unit_name="video")
    videos = []
    for i in range(num_videos):
        videos.append(generate_video(family, seed, i, frames, height, width))
        if bar is not None:
            bar.update(i + 1)
    return videos


def write_davis(root, splits: Dict[str, Sequence[SyntheticVideo]],
                annotate: str = "all") -> pathlib.Path:
    """Write videos as a DAVIS 2017 root, atomically (a temp folder renamed into place).

    Args:
        root: str or path, must not exist yet.
        splits: split name -> videos; writes `ImageSets/2017/<split>.txt` for each (a video may
            appear in one split only).
        annotate: "all" (every object, ids 1..K) or "target" (only id 1; others background).

    Returns:
        The root as a pathlib.Path.

    Raises:
        UserError: the root exists, bad `annotate`, a sequence name repeated.
    """
    root = pathlib.Path(root)
    if annotate not in ANNOTATE:
        raise UserError(f"annotate must be one of {', '.join(ANNOTATE)}, got {annotate!r}")
    if root.exists():
        raise UserError(f"{root}: already exists; choose a new output folder")
    names = [v.name for videos in splits.values() for v in videos]
    if len(names) != len(set(names)):
        raise UserError("a sequence appears twice in the splits")
    with atomic_dir(root) as temp:
        palette = davis_palette().reshape(-1).tolist()
        sets = temp / "ImageSets" / "2017"
        sets.mkdir(parents=True)
        for split, videos in splits.items():
            for video in videos:
                image_dir = temp / "JPEGImages" / RESOLUTION / video.name
                mask_dir = temp / "Annotations" / RESOLUTION / video.name
                image_dir.mkdir(parents=True)
                mask_dir.mkdir(parents=True)
                for t in range(video.frames.shape[0]):
                    Image.fromarray(video.frames[t]).save(
                        image_dir / f"{t:05d}.jpg", quality=JPEG_QUALITY)
                    labels = video.labels[t]
                    if annotate == "target":
                        labels = np.where(labels == TARGET_ID, TARGET_ID, 0).astype(np.uint8)
                    mask = Image.fromarray(labels, mode="P")
                    mask.putpalette(palette)
                    mask.save(mask_dir / f"{t:05d}.png")
            (sets / f"{split}.txt").write_text("".join(f"{v.name}\n" for v in videos))
    return root
