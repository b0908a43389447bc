"""On-the-fly training clips for the testbed: camera pans and zooms over real photos, with moving objects.

Every clip is drawn from the prompt vocabulary (`vocab.ROLES`): a scene photo (shipped inside scikit-image),
an optional object cut from another photo (a disc or square sprite) moving left/right/up/down/still at a
slow or fast speed, and a camera that stays static, pans or zooms. Random choices come from one CPU
`torch.Generator`, so a seed fixes a batch exactly; rendering is batched `grid_sample` on any device
(a batch of 16-frame clips renders in milliseconds on a GPU, so training never waits for data).

Geometry is in normalised frame units ([-1, 1] across the frame, as in `grid_sample`), so the same clip spec
renders at 64x64 or 48x48: speeds below are per frame, in those units (0.03125 = one pixel at 64x64).
Camera words follow film usage: "pan-left" turns the camera left, so the scene slides right in the frame.
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from . import vocab

TEXTURE_SIZE = 160  # scene photos are resized to this square; a 64 px frame shows 40-50 % of it.
SPRITE_SIZE = 64

# Scene photo: (skimage.data name, crop rows, crop cols, tint for grayscale photos).
SCENE_SOURCES = {
    "brick": ("brick", None, None, (1.0, 0.62, 0.48)),
    "grass": ("grass", None, None, (0.55, 0.92, 0.42)),
    "gravel": ("gravel", None, None, (0.95, 0.88, 0.75)),
    "coffee": ("coffee", (0, 400), (100, 500), None),
    "space": ("hubble_deep_field", (0, 872), (64, 936), None),
    "moon": ("moon", None, None, (0.9, 0.92, 1.0)),
}
# Object sprite: (skimage.data name, crop rows, crop cols, tint, shape).
OBJECT_SOURCES = {
    "cat": ("chelsea", (20, 290), (75, 345), None, "disc"),
    "astronaut": ("astronaut", (10, 200), (140, 330), None, "disc"),
    "rocket": ("rocket", (120, 330), (215, 425), None, "square"),
    "coin": ("coins", (12, 92), (302, 382), (1.0, 0.85, 0.45), "disc"),
    "photographer": ("camera", (60, 300), (110, 350), None, "square"),
}

P_NO_OBJECT = 0.12
P_STILL = 0.16
CAMERA_WEIGHTS = {
    "static": 0.25,
    "pan-left": 0.15,
    "pan-right": 0.15,
    "pan-up": 0.15,
    "pan-down": 0.15,
    "zoom-in": 0.075,
    "zoom-out": 0.075,
}
WINDOW_HALF = (0.40, 0.50)  # half-size of the camera window, in texture units (texture spans [-1, 1])
PAN_SPEED = (0.030, 0.075)  # frame widths per frame (1.9 to 4.8 px at 64x64; measured mean 3.2)
ZOOM_RATIO = (0.6, 0.75)  # window size at the tight end of a zoom / at the wide end
OBJECT_HALF = (0.34, 0.44)  # sprite half-size in frame units (22-28 px wide at 64x64)
OBJECT_SPEED = {"slow": (0.031, 0.050), "fast": (0.069, 0.100)}
ANCHOR_SPAN = 0.25  # with anchored_motion: share of the free room a moving object's start is drawn from
DIRECTIONS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0), "still": (0.0, 0.0)}


@dataclass
class ClipBatch:
    """A batch of clips: frames [B, F, H, W, 3] in [0, 1], their prompts' token ids [B, TEXT_LEN], prompt texts."""

    frames: torch.Tensor
    word_ids: torch.Tensor
    prompts: list[str]
    alpha: torch.Tensor | None = None  # [B, F, H, W] object coverage in [0, 1], when asked for


def _photo(name: str, rows, cols, tint) -> torch.Tensor:
    """One skimage photo, cropped and tinted, as [3, h, w] float32 in [0, 1]."""
    import skimage.data  # lazy: only the generator needs scikit-image

    img = np.asarray(getattr(skimage.data, name)(), dtype=np.float32) / 255.0
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3]
    if rows is not None:
        img = img[rows[0] : rows[1], cols[0] : cols[1]]
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)
    if tint is not None:
        t = t * torch.tensor(tint).view(3, 1, 1)
    return t


def _square(t: torch.Tensor, size: int) -> torch.Tensor:
    """Centre-crop [3, h, w] to a square and resize (antialiased) to [3, size, size]."""
    _, h, w = t.shape
    side = min(h, w)
    t = t[:, (h - side) // 2 : (h - side) // 2 + side, (w - side) // 2 : (w - side) // 2 + side]
    return F.interpolate(t[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]


def _alpha(shape: str, size: int) -> torch.Tensor:
    """[1, size, size] soft-edged (one pixel) disc or square mask."""
    c = (torch.arange(size) + 0.5) / size * 2 - 1
    y, x = torch.meshgrid(c, c, indexing="ij")
    dist = torch.sqrt(x**2 + y**2) if shape == "disc" else torch.maximum(x.abs(), y.abs())
    return ((1 - dist) * size / 2 + 0.5).clamp(0, 1)[None]


def load_assets(device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Scene textures [len(SCENES), 3, T, T] and premultiplied RGBA sprites [len(OBJECTS), 4, S, S] on `device`."""
    scenes = [_square(_photo(*SCENE_SOURCES[s]), TEXTURE_SIZE) for s in vocab.SCENES]
    sprites = []
    for o in vocab.OBJECTS:
        name, rows, cols, tint, shape = OBJECT_SOURCES[o]
        rgb = _square(_photo(name, rows, cols, tint), SPRITE_SIZE).clamp(0, 1)
        a = _alpha(shape, SPRITE_SIZE)
        sprites.append(torch.cat([rgb * a, a]))
    return torch.stack(scenes).clamp(0, 1).to(device), torch.stack(sprites).to(device)


def _uniform(gen: torch.Generator, n: int, lo_hi) -> torch.Tensor:
    return torch.rand(n, generator=gen) * (lo_hi[1] - lo_hi[0]) + lo_hi[0]


def _choice(gen: torch.Generator, n: int, weights) -> torch.Tensor:
    return torch.multinomial(torch.tensor(weights, dtype=torch.float), n, replacement=True, generator=gen)


@dataclass
class ClipSpecs:
    """Word choices of B clips (ids into the vocab role tuples; object -1 = none; speed -1 = none)."""

    scene: torch.Tensor
    obj: torch.Tensor
    motion: torch.Tensor
    speed: torch.Tensor
    camera: torch.Tensor

    def words(self, i: int) -> dict:
        """The vocabulary words of clip i, by role."""
        obj = int(self.obj[i])
        return {
            "scene": vocab.SCENES[int(self.scene[i])],
            "obj": vocab.OBJECTS[obj] if obj >= 0 else None,
            "motion": vocab.MOTIONS[int(self.motion[i])],
            "speed": vocab.SPEEDS[int(self.speed[i])] if int(self.speed[i]) >= 0 else None,
            "camera": vocab.CAMERAS[int(self.camera[i])],
        }

    def prompt(self, i: int) -> str:
        return vocab.make_prompt(**self.words(i))


def sample_specs(gen: torch.Generator, n: int) -> ClipSpecs:
    """Draw n clip specs from the training distribution."""
    scene = torch.randint(len(vocab.SCENES), (n,), generator=gen)
    has_obj = torch.rand(n, generator=gen) >= P_NO_OBJECT
    obj = torch.where(has_obj, torch.randint(len(vocab.OBJECTS), (n,), generator=gen), -1)
    still = vocab.MOTIONS.index("still")
    moving = torch.rand(n, generator=gen) >= P_STILL
    motion = torch.where(moving & has_obj, torch.randint(4, (n,), generator=gen), still)
    speed = torch.where(motion != still, torch.randint(2, (n,), generator=gen), -1)
    camera = _choice(gen, n, [CAMERA_WEIGHTS[c] for c in vocab.CAMERAS])
    return ClipSpecs(scene, obj, motion, speed, camera)


def specs_from_prompts(prompts: list[str]) -> ClipSpecs:
    """Clip specs from prompt texts (missing camera -> static, missing motion -> still, speed -> slow)."""
    cols = {k: [] for k in ("scene", "obj", "motion", "speed", "camera")}
    for text in prompts:
        words = vocab.parse_prompt(text)
        pick = {role: next((w for w in words if w in ws), None) for role, ws in vocab.ROLES.items()}
        if pick["scene"] is None:
            raise ValueError(f"prompt {text!r} names no scene")
        motion = pick["motion"] or "still"
        cols["scene"].append(vocab.SCENES.index(pick["scene"]))
        cols["obj"].append(vocab.OBJECTS.index(pick["object"]) if pick["object"] else -1)
        cols["motion"].append(vocab.MOTIONS.index(motion))
        cols["speed"].append(-1 if motion == "still" else vocab.SPEEDS.index(pick["speed"] or "slow"))
        cols["camera"].append(vocab.CAMERAS.index(pick["camera"] or "static"))
    return ClipSpecs(**{k: torch.tensor(v) for k, v in cols.items()})


def spec_word_ids(specs: ClipSpecs) -> torch.Tensor:
    """[B, TEXT_LEN] token ids of the specs' canonical prompts."""
    return torch.tensor([vocab.word_ids(vocab.parse_prompt(specs.prompt(i))) for i in range(len(specs.scene))])


class ClipGenerator:
    """Renders clips of the testbed distribution on `device`; assets are loaded once."""

    def __init__(self, device="cpu", anchored_motion: bool = False):
        """anchored_motion: a moving object starts near the edge it leaves from (the published checkpoint was
        trained without it: starts uniform along the path). Anchoring puts the motion into the conditional mean
        video, which a briefly trained model can learn far more easily than "pick a start, then move"."""
        self.device = torch.device(device)
        self.anchored_motion = anchored_motion
        self.textures, self.sprites = load_assets(self.device)

    def sample(
        self, gen: torch.Generator, n: int, frames: int = 16, size: int = 64, with_alpha: bool = False
    ) -> ClipBatch:
        """n random clips of `frames` frames at size x size pixels, fully determined by `gen`'s state."""
        specs = sample_specs(gen, n)
        out = self.render(specs, gen, frames, size, with_alpha)
        video, alpha = out if with_alpha else (out, None)
        return ClipBatch(video, spec_word_ids(specs), [specs.prompt(i) for i in range(n)], alpha)

    def render(self, specs: ClipSpecs, gen: torch.Generator, frames: int, size: int, with_alpha: bool = False):
        """Render specs (continuous parameters drawn from `gen`) -> frames [B, F, size, size, 3] in [0, 1].

        with_alpha: also return the object's coverage [B, F, size, size] (draws nothing more from `gen`).
        """
        n = len(specs.scene)
        t = torch.arange(frames, dtype=torch.float)[None]  # [1, F]
        bg_grid = self._camera_paths(specs, gen, n, t)  # (cx, cy, s), each [B, F]
        obj_grid = self._object_paths(specs, gen, n, t, self.anchored_motion)  # (px, py, r), each [B, F]
        coords = (torch.arange(size, dtype=torch.float) * 2 + 1) / size - 1  # pixel centres in [-1, 1]
        bg = self._sample(self.textures[specs.scene.to(self.device)], *bg_grid, coords, scale_is_inverse=False)
        has_obj = specs.obj >= 0
        sprite = self.sprites[specs.obj.clamp(min=0).to(self.device)]
        fg = self._sample(sprite, *obj_grid, coords, scale_is_inverse=True)  # [B, 4, F, H, W], premultiplied
        fg = fg * has_obj.to(self.device, fg.dtype).view(n, 1, 1, 1, 1)
        out = bg * (1 - fg[:, 3:]) + fg[:, :3]
        out = out.permute(0, 2, 3, 4, 1).clamp(0, 1).contiguous()
        return (out, fg[:, 3].clamp(0, 1)) if with_alpha else out

    def _sample(self, img, cx, cy, s, coords, scale_is_inverse):
        """Sample img [B, C, h, w] on per-frame axis-aligned grids -> [B, C, F, H, W].

        Frame pixel u maps to image coordinate cx + s * u (camera window), or (u - cx) / s when
        scale_is_inverse (a sprite of half-size s placed at cx). All F frames share one grid_sample call by
        stacking them vertically, so the image is never copied per frame.
        """
        b, f, n = cx.shape[0], cx.shape[1], coords.numel()
        cx, cy, s = (v.to(self.device)[:, :, None] for v in (cx, cy, s))
        u = coords.to(self.device)[None, None]
        gx = (u - cx) / s if scale_is_inverse else cx + s * u  # [B, F, W]
        gy = (u - cy) / s if scale_is_inverse else cy + s * u  # [B, F, H]
        grid = torch.stack(torch.broadcast_tensors(gx[:, :, None, :], gy[:, :, :, None]), dim=-1)
        out = F.grid_sample(
            img, grid.reshape(b, f * n, n, 2), mode="bilinear", padding_mode="zeros", align_corners=False
        )
        return out.view(b, img.shape[1], f, n, n)

    @staticmethod
    def _camera_paths(specs: ClipSpecs, gen, n, t):
        """Camera window centre (cx, cy) and half-size s per frame, each [B, F], in texture units."""
        s0 = _uniform(gen, n, WINDOW_HALF)
        zoom = _uniform(gen, n, ZOOM_RATIO)
        speed = _uniform(gen, n, PAN_SPEED)
        frac = t / max(t.shape[1] - 1, 1)  # 0 -> 1 over the clip
        cam = [vocab.CAMERAS[int(c)] for c in specs.camera]
        zin = torch.tensor([c == "zoom-in" for c in cam])[:, None]
        zout = torch.tensor([c == "zoom-out" for c in cam])[:, None]
        # zoom-in shrinks the window s0 -> s0 * zoom (geometrically), zoom-out grows it back.
        s = torch.where(zin, s0[:, None] * zoom[:, None] ** frac, s0[:, None].expand(-1, t.shape[1]))
        s = torch.where(zout, s0[:, None] * zoom[:, None] ** (1 - frac), s)
        dx = torch.tensor([-1.0 if c == "pan-left" else 1.0 if c == "pan-right" else 0.0 for c in cam])
        dy = torch.tensor([-1.0 if c == "pan-up" else 1.0 if c == "pan-down" else 0.0 for c in cam])
        step = speed * 2 * s0  # frame units -> texture units: the frame spans 2 * s of the texture
        centres = []
        for d in (dx, dy):
            travel = d.abs() * step * (t.shape[1] - 1)
            room = (1 - s0) * 2 - travel  # the start point must leave the whole path inside the texture
            start = -(1 - s0) + torch.rand(n, generator=gen) * room.clamp(min=0)
            start = torch.where(d < 0, -start, start)
            centres.append(start[:, None] + (d * step)[:, None] * t)
        return centres[0], centres[1], s

    @staticmethod
    def _object_paths(specs: ClipSpecs, gen, n, t, anchored: bool = False):
        """Sprite centre (px, py) and half-size r per frame, each [B, F], in frame units."""
        r = _uniform(gen, n, OBJECT_HALF)
        lo = torch.tensor([OBJECT_SPEED[vocab.SPEEDS[max(int(v), 0)]][0] for v in specs.speed])
        hi = torch.tensor([OBJECT_SPEED[vocab.SPEEDS[max(int(v), 0)]][1] for v in specs.speed])
        speed = lo + torch.rand(n, generator=gen) * (hi - lo)
        dirs = torch.tensor([DIRECTIONS[vocab.MOTIONS[int(m)]] for m in specs.motion])  # [B, 2]
        pos = []
        for axis in range(2):
            d = dirs[:, axis]
            travel = d.abs() * speed * (t.shape[1] - 1)
            # Along the motion the sprite may start and end half outside the frame; across it stays inside.
            margin = torch.where(d != 0, r * 0.5, r)
            room = 2 - 2 * margin - travel
            span = torch.where(d != 0, ANCHOR_SPAN, 1.0) if anchored else 1.0
            start = -1 + margin + torch.rand(n, generator=gen) * room.clamp(min=0) * span
            start = torch.where(room < 0, -travel / 2, start)  # path longer than the frame: centre it
            start = torch.where(d < 0, -start, start)
            pos.append(start[:, None] + (d * speed)[:, None] * t)
        return pos[0], pos[1], r[:, None].expand(-1, t.shape[1])
