"""Procedural face renderer for the demo data: identity x expression x style.

Anti-aliased OpenCV primitives drawn from an `Identity` (per subject) and an `Expression`
(per emotion, scaled by an intensity in [0, 1] so CK+ sequences run from neutral to
peak); a pure function of its arguments and a numpy Generator, so bit-for-bit reproducible.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

import cv2
import numpy as np

SKIN_TONES = np.array([  # RGB, light to dark
    (241, 210, 185), (233, 190, 160), (222, 172, 140), (198, 144, 110),
    (170, 118, 86), (140, 94, 66), (105, 70, 50)], dtype=np.float32)
HAIR_COLOURS = np.array([
    (30, 24, 20), (60, 42, 30), (110, 78, 50), (170, 130, 80), (200, 170, 120),
    (90, 40, 25), (128, 128, 128)], dtype=np.float32)


@dataclass(frozen=True)
class Identity:
    face_w: float        # half-width of the face ellipse, fraction of the head box
    face_h: float        # half-height / half-width
    skin: tuple          # RGB
    hair: tuple          # RGB
    hair_style: int      # 0 short, 1 long, 2 very short
    eye_gap: float       # eye centre distance from midline, fraction of face_w
    eye_size: float
    nose_len: float
    mouth_w: float
    brow_w: float        # brow thickness
    iris: tuple          # RGB


@dataclass(frozen=True)
class Expression:
    brow_raise: float = 0.0   # + up
    brow_tilt: float = 0.0    # + inner ends up (sad/fear), - inner ends down (angry)
    eye_open: float = 1.0
    mouth_curve: float = 0.0  # + smile, - frown
    mouth_open: float = 0.0
    mouth_w: float = 1.0
    wrinkle: float = 0.0      # nose wrinkle / raised upper lip (disgust)
    teeth: bool = False


EXPRESSIONS = {
    "neutral": Expression(),
    "happy": Expression(brow_raise=0.1, eye_open=0.75, mouth_curve=0.9, mouth_open=0.35,
                        mouth_w=1.3, teeth=True),
    "sad": Expression(brow_tilt=0.9, eye_open=0.75, mouth_curve=-0.8, mouth_w=0.9),
    "angry": Expression(brow_raise=-0.8, brow_tilt=-1.0, eye_open=0.7, mouth_curve=-0.3,
                        mouth_open=0.12, mouth_w=0.85, teeth=True),
    "surprise": Expression(brow_raise=1.2, eye_open=1.6, mouth_open=1.1, mouth_w=0.65),
    "fear": Expression(brow_raise=0.8, brow_tilt=0.8, eye_open=1.5, mouth_curve=-0.25,
                       mouth_open=0.45, mouth_w=1.35, teeth=True),
    "disgust": Expression(brow_raise=-0.5, brow_tilt=-0.4, eye_open=0.6, mouth_curve=-0.6,
                          mouth_open=0.2, mouth_w=1.0, wrinkle=1.0, teeth=True),
}


@dataclass(frozen=True)
class Style:
    """How a database looks: canvas, face size and place, colour, light, background."""
    width: int
    height: int
    face_frac: float         # face half-width as a fraction of canvas width
    center: tuple            # face centre, fractions of (width, height)
    background: tuple        # RGB base
    grayscale: bool = False
    light: float = 0.0       # strength of a left-right lighting gradient
    contrast: float = 1.0
    noise: float = 2.0
    jitter: float = 0.02     # random shift of the face centre, fraction of canvas


STYLES = {
    "kdef": Style(562, 762, 0.25, (0.5, 0.47), (150, 160, 170), light=0.05),
    "ck": Style(640, 490, 0.15, (0.5, 0.45), (70, 70, 70), grayscale=True, light=0.35,
                contrast=0.9, noise=4.0, jitter=0.05),
    "jaffe": Style(256, 256, 0.27, (0.5, 0.52), (40, 40, 40), grayscale=True, light=0.15,
                   contrast=1.25, noise=3.0, jitter=0.03),
    "pfa": Style(562, 762, 0.25, (0.5, 0.47), (140, 150, 165), light=0.08, noise=3.0),
    "actor": Style(400, 500, 0.22, (0.5, 0.45), (200, 180, 150), light=0.25, noise=3.0,
                   jitter=0.06),
}


def random_identity(rng: np.random.Generator) -> Identity:
    skin = SKIN_TONES[rng.integers(len(SKIN_TONES))] + rng.normal(0, 6, 3)
    return Identity(
        face_w=float(rng.uniform(0.92, 1.08)),
        face_h=float(rng.uniform(1.22, 1.42)),
        skin=tuple(np.clip(skin, 0, 255)),
        hair=tuple(HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))]),
        hair_style=int(rng.integers(3)),
        eye_gap=float(rng.uniform(0.36, 0.44)),
        eye_size=float(rng.uniform(0.85, 1.15)),
        nose_len=float(rng.uniform(0.85, 1.15)),
        mouth_w=float(rng.uniform(0.85, 1.15)),
        brow_w=float(rng.uniform(0.8, 1.3)),
        iris=tuple(float(c) for c in rng.choice([(70, 45, 30), (60, 90, 130), (80, 110, 70),
                                                (40, 30, 25)])),
    )


def expression_for(emotion: str, intensity: float, rng: np.random.Generator) -> Expression:
    """The emotion's expression at `intensity` (0 = neutral face), with small jitter."""
    peak, base = EXPRESSIONS[emotion], EXPRESSIONS["neutral"]
    mix = {k: getattr(base, k) + intensity * (getattr(peak, k) - getattr(base, k))
           * float(rng.uniform(0.8, 1.15))
           for k in (f.name for f in fields(Expression)) if k != "teeth"}
    return replace(peak, teeth=peak.teeth and intensity > 0.5, **mix)


def _pt(x, y):
    return (int(round(x * 16)), int(round(y * 16)))


def _poly(img, pts, colour, closed=True, thickness=-1):
    colour = tuple(float(c) for c in colour)
    arr = np.array([_pt(x, y) for x, y in pts], dtype=np.int32)
    if thickness < 0:
        cv2.fillPoly(img, [arr], colour, cv2.LINE_AA, shift=4)
    else:
        cv2.polylines(img, [arr], closed, colour, max(1, int(thickness)), cv2.LINE_AA, shift=4)


def _ellipse(img, cx, cy, ax, ay, colour, angle=0.0, thickness=-1, start=0, end=360):
    colour = tuple(float(c) for c in colour) if not np.isscalar(colour) else float(colour)
    cv2.ellipse(img, _pt(cx, cy), (int(ax * 16), int(ay * 16)), angle, start, end,
                colour, thickness, cv2.LINE_AA, shift=4)


def _curve(x0, x1, y, bend, n=12):
    """Points on a parabola from x0 to x1 at height y, middle displaced by `bend`."""
    t = np.linspace(-1, 1, n)
    xs = x0 + (t + 1) / 2 * (x1 - x0)
    return list(zip(xs, y + bend * (1 - t ** 2)))


def render_face(identity: Identity, expr: Expression, style: Style,
                rng: np.random.Generator, yaw: float = 0.0) -> np.ndarray:
    """One face as an (H, W, 3) RGB uint8 image; `yaw` in [-1, 1] turns the head (KDEF
    half and full profiles)."""
    return draw_face(identity, expr, style, rng, yaw)[0]


def draw_face(identity: Identity, expr: Expression, style: Style,
              rng: np.random.Generator, yaw: float = 0.0) -> tuple[np.ndarray, tuple]:
    """render_face's image and the face's box (x0, y0, x1, y1 of the skin ellipse): the
    ground truth for the crop tests."""
    W, H = style.width, style.height
    img = np.empty((H, W, 3), np.float32)
    img[:] = np.array(style.background, np.float32) + rng.normal(0, 5, 3)
    # vignette / soft background light
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    img *= (1.0 - 0.15 * (((xx - W / 2) / W) ** 2 + ((yy - H / 2) / H) ** 2))[..., None]
    img = np.clip(img, 0, 255).astype(np.uint8)

    a = style.face_frac * W * identity.face_w           # face half-width
    b = a * identity.face_h                              # face half-height
    cx = style.center[0] * W + rng.normal(0, style.jitter * W)
    cy = style.center[1] * H + rng.normal(0, style.jitter * H)
    turn = yaw * a * 0.45                                # feature shift for a turned head
    aw = a * (1 - 0.25 * abs(yaw))
    dark = tuple(float(c) * 0.72 for c in identity.skin)
    hair = tuple(float(c) for c in identity.hair)

    # shoulders and neck
    _ellipse(img, cx, cy + b * 2.3, a * 2.4, b * 1.0, rng.uniform(40, 200, 3))      # shirt
    _poly(img, [(cx - a * 0.42, cy + b * 0.6), (cx + a * 0.42, cy + b * 0.6),
                (cx + a * 0.5, cy + b * 1.45), (cx - a * 0.5, cy + b * 1.45)], dark)
    if identity.hair_style == 1:  # long hair behind the head
        _ellipse(img, cx, cy + b * 0.25, a * 1.25, b * 1.2, hair)
    # ears
    for side in (-1, 1):
        if abs(yaw) < 0.9 or side == np.sign(-yaw):
            _ellipse(img, cx + side * aw * 0.98 + turn * 0.3, cy - b * 0.05, a * 0.16, b * 0.2,
                     dark)
    # face with radial shading
    fx = cx + turn * 0.2                                 # the face's centre
    face = np.zeros((H, W), np.uint8)
    _ellipse(face, fx, cy, aw, b, 255)
    box = (fx - aw, cy - b, fx + aw, cy + b)
    r2 = ((xx - cx - turn * 0.2) / aw) ** 2 + ((yy - cy) / b) ** 2
    shade = np.clip(1.0 - 0.28 * r2 - 0.08 * (xx - cx) / aw * np.sign(yaw + 1e-6), 0.4, 1.1)
    face_rgb = np.array(identity.skin, np.float32)[None, None, :] * shade[..., None]
    m = face.astype(np.float32)[..., None] / 255.0
    img = (img * (1 - m) + face_rgb * m).clip(0, 255).astype(np.uint8)
    # hair cap
    if identity.hair_style != 2:
        _ellipse(img, fx, cy - b * 0.55, aw * 1.08, b * 0.55, hair, start=180, end=360)
        _ellipse(img, fx, cy - b * 0.55, aw * 1.08, b * 0.16, hair, start=0, end=180)
    else:
        _ellipse(img, fx, cy - b * 0.62, aw * 1.0, b * 0.42, hair, start=180, end=360)

    eye_y = cy - b * 0.12
    ex = a * identity.eye_gap
    ew, eh = a * 0.17 * identity.eye_size, a * 0.075 * identity.eye_size * expr.eye_open
    brow_y = eye_y - b * 0.16 - expr.brow_raise * b * 0.06
    for side in (-1, 1):
        x = cx + side * ex * (1 - 0.3 * side * yaw) + turn
        if abs(yaw) > 0.9 and side == np.sign(yaw):
            continue
        # eye: white, iris, pupil, upper lid
        _ellipse(img, x, eye_y, ew, max(eh, 1.0), (245, 245, 240))
        ir = min(ew * 0.5, max(eh, 1.0) * 1.1)
        _ellipse(img, x - yaw * ew * 0.3, eye_y, ir, ir, identity.iris)
        _ellipse(img, x - yaw * ew * 0.3, eye_y, ir * 0.45, ir * 0.45, (10, 10, 10))
        _ellipse(img, x, eye_y, ew, max(eh, 1.0), (40, 30, 25), thickness=max(1, int(a * 0.02)),
                 start=180, end=360)
        # eyebrow: inner end at the midline side
        inner_x, outer_x = x - side * ew * 1.1, x + side * ew * 1.3
        tilt = expr.brow_tilt * b * 0.045
        _poly(img, [(outer_x, brow_y + b * 0.01), (x, brow_y - b * 0.025),
                    (inner_x, brow_y - tilt)], hair, closed=False,
              thickness=a * 0.05 * identity.brow_w)
    # nose
    nx, ny = cx + turn * 1.2, cy + b * 0.2 * identity.nose_len
    _poly(img, [(nx - a * 0.02, eye_y + b * 0.05), (nx - a * 0.06, ny - b * 0.02),
                (nx, ny + b * 0.02)], dark, closed=False, thickness=a * 0.025)
    for side in (-1, 1):
        _ellipse(img, nx + side * a * 0.09, ny, a * 0.045, a * 0.028, (60, 40, 35))
    if expr.wrinkle > 0.05:
        for k in range(3):
            yk = eye_y + b * (0.03 + 0.035 * k)
            _poly(img, _curve(nx - a * 0.08, nx + a * 0.08, yk, -b * 0.01 * expr.wrinkle),
                  dark, closed=False, thickness=max(1, a * 0.015 * expr.wrinkle))
    # mouth
    my = cy + b * 0.52 - expr.wrinkle * b * 0.03
    mw = a * 0.38 * identity.mouth_w * expr.mouth_w
    mx = cx + turn * 1.1
    curve = expr.mouth_curve * b * 0.12
    opening = expr.mouth_open * b * 0.14
    upper = _curve(mx - mw, mx + mw, my, curve * 0.5 - opening * 0.25)
    lower = _curve(mx + mw, mx - mw, my, curve * 0.5 + opening)
    lip = (170, 80, 80) if not style.grayscale else (120, 60, 60)
    if opening > b * 0.01:
        _poly(img, upper + lower, (40, 15, 15))
        if expr.teeth:
            _poly(img, upper + _curve(mx + mw * 0.8, mx - mw * 0.8, my, curve * 0.5),
                  (235, 235, 225))
        _poly(img, upper, lip, closed=False, thickness=a * 0.05)
        _poly(img, lower, lip, closed=False, thickness=a * 0.06)
    else:
        _poly(img, upper + lower, lip)
        _poly(img, upper, (90, 40, 40), closed=False, thickness=a * 0.02)

    out = img.astype(np.float32)
    if style.light:
        out *= (1 + style.light * (xx - W / 2) / W * 2)[..., None]
    out = (out - 128) * style.contrast + 128
    out = cv2.GaussianBlur(out, (0, 0), max(0.6, W / 600))
    out += rng.normal(0, style.noise, out.shape).astype(np.float32)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if style.grayscale:
        out = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    return out, box
