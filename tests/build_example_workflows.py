"""Build example_workflows/ from ComfyUI's official workflow templates, with TAPE Patch Model inserted where a user
would put it: after the loader, LoRA and ModelSamplingSD3, right before each sampler. Thumbnails are pictures of
the graph (the template browser asks for <name>.jpg next to <name>.json).

    .venv/bin/python tests/build_example_workflows.py          # rewrites example_workflows/*.json and *.jpg

Everything the official template holds (model file names and download links, prompts, sizes, steps, notes, groups)
is kept; only TAPE nodes and one note about them are added, the nodes from the sampler column on move right to make
room, and the Wan 2.2 14B T2V template's two graphs (4-step LoRA, 20 steps) become two files. HunyuanVideo's
template samples with SamplerCustomAdvanced: TAPE goes on its BasicGuider's model input (after ModelSamplingSD3);
LTX-Video's feed the checkpoint's model straight to SamplerCustom: TAPE goes between them.
tests/test_workflows.py checks that the shipped files still match what this script builds from the installed
template package, then runs each of them on a real ComfyUI server.
"""

from __future__ import annotations

import copy
import importlib.metadata
import json
import math
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "example_workflows"
DEMO = "tape_testbed_demo"
TEMPLATES_PACKAGE = "comfyui_workflow_templates"

TAPE_TYPE = "TAPEPatchModel"
TAPE_WIDTH = 360
TAPE_TEXT = (560, 46)  # web/tape_summary.js writes 2 lines (estimate, last run) under the node: keep that area free
TAPE_COLOR, TAPE_BGCOLOR = "#233", "#355"  # LiteGraph's cyan: the templates use green / red for the prompts
COLUMN = TAPE_TEXT[0] + 40  # width of the column made for TAPE in front of the samplers
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
GAP = 40  # vertical space between stacked nodes (the title bar, 30, comes on top)
TITLE_H = 30
SAMPLERS = ("KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced")  # the nodes that sample
# TAPE goes on the MODEL input of these: the samplers that take one, and the guider SamplerCustomAdvanced runs
TAPE_BEFORE = ("KSampler", "KSamplerAdvanced", "SamplerCustom", "BasicGuider")


def templates_dir() -> Path:
    import comfyui_workflow_templates

    return Path(comfyui_workflow_templates.__file__).parent / "templates"


def templates_version() -> str | None:
    try:
        return importlib.metadata.version("comfyui-workflow-templates")
    except importlib.metadata.PackageNotFoundError:
        return None


def tape_schema() -> tuple[list, list[dict]]:
    """TAPE Patch Model as nodes/patch_nodes.py defines it now: its widgets' defaults (in widget order, as the
    editor stores them) and its link input slots (optional ones drawn hollow: shape 7)."""
    import sys

    if "comfyui_tape" not in sys.modules:
        from comfy_harness import import_comfy, load_pack

        import_comfy()
        load_pack()
    from comfyui_tape.nodes.patch_nodes import TAPEPatchModel

    widgets, slots = [], []
    for inp in TAPEPatchModel.define_schema().inputs:
        kind = inp.get_io_type()
        if kind in WIDGET_TYPES:
            widgets.append(inp.default)
        else:
            slots.append({"name": inp.id, **({"shape": 7} if inp.optional else {}), "type": kind, "link": None})
    return widgets, slots


def tape_size(widgets: list, slots: list) -> list:
    """Height as the frontend sizes it: 20 per slot row, 24 per widget, 14 of margins."""
    return [TAPE_WIDTH, 20 * max(len(slots), 1) + 24 * len(widgets) + 14]


@dataclass
class Spec:
    name: str  # file name (no extension) in example_workflows/
    template: str  # official template name
    title: str  # thumbnail heading
    subtitle: str
    y_range: tuple[float, float] = (-math.inf, math.inf)  # keep nodes and groups whose top lies in this range
    drop: tuple[int, ...] = ()  # template node ids left out
    enable: bool = False  # set the kept graph's bypassed nodes to mode 0 (SaveImage stays bypassed)
    dy: float = 0.0  # move the kept graph up or down
    also_keep: dict[int, tuple | None] = field(default_factory=dict)  # notes kept outside y_range: id -> new pos
    note_text: dict[int, str] = field(default_factory=dict)  # replaced text of template notes, by node id
    note: str = ""  # extra text for the TAPE note
    placed: str = "after the model loader, LoRA and ModelSamplingSD3, right before the sampler{plural}"


TAPE_NOTE = (
    "## TAPE Patch Model\n"
    "Placed {placed}.\n\n"
    "- **Compare**: select {it} and press **Ctrl+B** (bypass) to get the unpruned video back, bit for bit.\n"
    "- The console prints one `TAPE: pruned ...` line per sampler run.\n"
    "- Artifacts (smeared background, frozen motion): raise `keep_ratio` (0.7 keeps far more detail).\n"
    "- Optional inputs: TAPE Budget Schedule, TAPE Layer Reselect, TAPE Advanced Options (left open: the best "
    "measured defaults).\n"
    "{extra}"
)

FOUR_STEP_NOTE = (
    "Using the Wan2.2 Lighting LoRA will result in the loss of video dynamics, but it will reduce the generation "
    "time. The official template holds both graphs; TAPE ships them as two example workflows: "
    "wan2.2_14B_t2v_4step_lora_tape (4 steps with the LoRA) and wan2.2_14B_t2v_tape (20 steps)."
)

SPECS = [
    Spec(
        "wan2.1_t2v_1.3B_tape",
        "text_to_video_wan",
        "Wan 2.1 T2V 1.3B + TAPE",
        "official template, 30 steps, CFG 6",
    ),
    Spec(
        "wan2.2_14B_t2v_4step_lora_tape",
        "video_wan2_2_14B_t2v",
        "Wan 2.2 14B T2V + TAPE",
        "4-step LoRA, high + low noise: TAPE on both",
        y_range=(-math.inf, 740),
        drop=(106,),
        note_text={112: FOUR_STEP_NOTE},
        note=(
            "- 4 steps, two stages of 2: the high-noise stage starts from noise with a dense warm-up step; the "
            "low-noise stage resumes its latent and warms up at keep 0.75 (`resume_keep`). TAPE Budget Schedule "
            "with `resume_keep` 1 makes both dense (1.45x instead of 1.69x, about 1.5 dB closer to unpruned on "
            "the testbed); `warmup_keep` 0.75 lightens the first stage too (about 2x, 0.5 dB further).\n"
        ),
    ),
    Spec(
        "wan2.2_14B_t2v_tape",
        "video_wan2_2_14B_t2v",
        "Wan 2.2 14B T2V + TAPE",
        "20 steps, high + low noise: TAPE on both",
        y_range=(740, math.inf),
        drop=(106,),
        enable=True,
        dy=-1070,  # to where the first graph sits (the template's saved view looks there)
        also_keep={62: None, 64: None, 112: None, 110: (40, 750)},  # model links, VRAM table, LoRA and size notes
        note_text={112: FOUR_STEP_NOTE},
    ),
    Spec(
        "wan2.2_5B_ti2v_tape",
        "video_wan2_2_5B_ti2v",
        "Wan 2.2 TI2V 5B + TAPE",
        "text or image to video, 20 steps, CFG 5",
    ),
    Spec(
        "wan2.1_i2v_480p_14B_tape",
        "image_to_video_wan",
        "Wan 2.1 I2V 14B 480p + TAPE",
        "image to video with CLIP vision, 20 steps, CFG 6",
    ),
    Spec(
        "hunyuan_video_t2v_720p_tape",
        "hunyuan_video_text_to_video",
        "HunyuanVideo T2V + TAPE",
        "official template, 20 steps, guidance 6",
        placed=(
            "after the model loader and ModelSamplingSD3, on the model input of BasicGuider (the guider "
            "SamplerCustomAdvanced samples with); BasicScheduler keeps its link from the template: TAPE leaves the "
            "sigmas as they are"
        ),
    ),
    Spec(
        "ltxv_t2v_2b_tape",
        "ltxv_text_to_video",
        "LTX-Video 2B T2V + TAPE",
        "official template, 30 steps, CFG 3",
        placed="between the checkpoint loader and SamplerCustom (the model input of the sampler)",
    ),
    Spec(
        "ltxv_i2v_2b_tape",
        "ltxv_image_to_video",
        "LTX-Video 2B I2V + TAPE",
        "image to video, 30 steps, CFG 3",
        placed="between the checkpoint loader and SamplerCustom (the model input of the sampler)",
        note="- The start image's frame is never pruned: LTXVImgToVideo marks it with a noise mask.\n",
    ),
]


# ---- graph helpers ----------------------------------------------------------------------------------------------
def node_map(wf: dict) -> dict[int, dict]:
    return {n["id"]: n for n in wf["nodes"]}


def link_map(wf: dict) -> dict[int, list]:
    return {lk[0]: lk for lk in wf["links"]}  # id -> [id, from, from_slot, to, to_slot, type]


def rect(node: dict) -> tuple[float, float, float, float]:
    """The node's box on the canvas, title bar included (pos is the body's top-left corner)."""
    (x, y), (w, h) = node["pos"], node["size"]
    return x, y - TITLE_H, x + w, y + h


def footprint(node: dict) -> list[tuple[float, float, float, float]]:
    """What the node covers: its box, and for TAPE Patch Model the lines its editor extension writes under it."""
    (x, y), (_, h) = node["pos"], node["size"]
    if node["type"] == TAPE_TYPE:
        return [rect(node), (x, y + h, x + TAPE_TEXT[0], y + h + TAPE_TEXT[1])]
    return [rect(node)]


def overlapping_nodes(wf: dict) -> list[tuple[int, int]]:
    boxes = [(n["id"], box) for n in wf["nodes"] for box in footprint(n)]
    return sorted(
        {
            (a, b)
            for i, (a, ra) in enumerate(boxes)
            for b, rb in boxes[i + 1 :]
            if a != b and ra[0] < rb[2] and rb[0] < ra[2] and ra[1] < rb[3] and rb[1] < ra[3]
        }
    )


def model_source(wf: dict, node: dict) -> dict:
    """The node feeding `node`'s MODEL input."""
    link = next(i["link"] for i in node["inputs"] if i["type"] == "MODEL")
    return node_map(wf)[link_map(wf)[link][1]]


def model_chain(wf: dict, sampler: dict) -> list[dict]:
    """Loader ... sampler, following MODEL inputs back."""
    chain = [sampler]
    while any(i["type"] == "MODEL" and i.get("link") is not None for i in chain[-1].get("inputs", [])):
        chain.append(model_source(wf, chain[-1]))
    return chain[::-1]


def samplers(wf: dict) -> list[dict]:
    active = [n for n in wf["nodes"] if n["type"] in TAPE_BEFORE and n.get("mode", 0) == 0]
    return sorted(active, key=lambda n: (n["pos"][0], n["pos"][1]))  # first stage first (left)


def execution_order(wf: dict) -> list[int]:
    """Topological order (Kahn), ties by id: what the editor stores as each node's `order`."""
    deps = {n["id"]: set() for n in wf["nodes"]}
    for _, src, _, dst, _, _ in wf["links"]:
        deps[dst].add(src)
    order, ready = [], sorted(i for i, d in deps.items() if not d)
    while ready:
        i = ready.pop(0)
        order.append(i)
        for j, d in deps.items():
            if i in d:
                d.discard(i)
                if not d and j not in order and j not in ready:
                    ready.append(j)
        ready.sort()
    assert len(order) == len(deps), "cycle in the graph"
    return order


def fit_view(wf: dict, screen=(1600, 850)) -> dict:
    """extra.ds that shows the whole graph on a typical canvas (screen = (pos + offset) * scale)."""
    boxes = [rect(n) for n in wf["nodes"]] + [
        (g["bounding"][0], g["bounding"][1], g["bounding"][0] + g["bounding"][2], g["bounding"][1] + g["bounding"][3])
        for g in wf.get("groups", [])
    ]
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    scale = round(min(screen[0] / (x1 - x0), screen[1] / (y1 - y0), 1.0), 3)
    return {"scale": scale, "offset": [round(-x0 + 40 / scale, 1), round(-y0 + 40 / scale, 1)]}


# ---- building ---------------------------------------------------------------------------------------------------
def _select(wf: dict, spec: Spec) -> dict:
    lo, hi = spec.y_range
    keep = {n["id"] for n in wf["nodes"] if lo <= n["pos"][1] < hi} - set(spec.drop) | set(spec.also_keep)
    wf["nodes"] = [n for n in wf["nodes"] if n["id"] in keep]
    wf["links"] = [lk for lk in wf["links"] if lk[1] in keep and lk[3] in keep]
    live = {lk[0] for lk in wf["links"]}
    for n in wf["nodes"]:
        for i in n.get("inputs", []):
            if i.get("link") is not None and i["link"] not in live:
                i["link"] = None
        for o in n.get("outputs", []):
            if o.get("links"):
                o["links"] = [lk for lk in o["links"] if lk in live]
    wf["groups"] = [g for g in wf.get("groups", []) if lo <= g["bounding"][1] < hi]
    if spec.enable:
        for n in wf["nodes"]:
            if n.get("mode", 0) == 4 and n["type"] != "SaveImage":
                n["mode"] = 0
    for n in wf["nodes"]:
        if spec.also_keep.get(n["id"]):
            n["pos"] = list(spec.also_keep[n["id"]])
    if spec.dy:
        for n in wf["nodes"]:
            if n["id"] not in spec.also_keep:
                n["pos"] = [n["pos"][0], n["pos"][1] + spec.dy]
        for g in wf["groups"]:
            g["bounding"] = [g["bounding"][0], g["bounding"][1] + spec.dy, *g["bounding"][2:]]
    return wf


def _make_room(wf: dict, x: float, width: float, stay: set[int]):
    """Open a free column [x, x + width): what starts at or right of x moves right, groups across it widen."""
    for n in wf["nodes"]:
        if n["pos"][0] >= x and n["id"] not in stay:
            n["pos"] = [n["pos"][0] + width, n["pos"][1]]
    for g in wf.get("groups", []):
        gx, gy, gw, gh = g["bounding"]
        if gx >= x:
            g["bounding"] = [gx + width, gy, gw, gh]
        elif gx + gw > x:
            g["bounding"] = [gx, gy, gw + width, gh]


def _tape_node(node_id: int, pos, title: str | None, widgets: list, slots: list) -> dict:
    node = {
        "id": node_id,
        "type": TAPE_TYPE,
        "pos": [round(pos[0], 1), round(pos[1], 1)],
        "size": tape_size(widgets, slots),
        "flags": {},
        "order": 0,
        "mode": 0,
        "inputs": copy.deepcopy(slots),
        "outputs": [{"name": "MODEL", "type": "MODEL", "slot_index": 0, "links": []}],
        "properties": {"Node name for S&R": TAPE_TYPE, "cnr_id": "comfyui-tape"},  # the registry id: "install missing"
        "widgets_values": list(widgets),
        "color": TAPE_COLOR,
        "bgcolor": TAPE_BGCOLOR,
    }
    if title:
        node["title"] = title
    return node


def build(spec: Spec, template: dict | None = None) -> dict:
    if template is None:
        template = json.loads((templates_dir() / f"{spec.template}.json").read_text())
    wf = _select(copy.deepcopy(template), spec)
    for nid, text in spec.note_text.items():
        for n in wf["nodes"]:
            if n["id"] == nid:
                n["widgets_values"] = [text]

    stages = samplers(wf)
    sources = [model_source(wf, s) for s in stages]
    col_x = min(s["pos"][0] for s in stages)
    stay = {m["id"] for m in sources if m["pos"][0] >= col_x}  # ModelSamplingSD3 sharing the sampler's column
    _make_room(wf, col_x, COLUMN, stay)
    y = max([min(s["pos"][1] for s in stages)] + [rect_bottom(m) + GAP + TITLE_H for m in sources if m["id"] in stay])

    nodes, links = node_map(wf), link_map(wf)
    next_node, next_link = wf["last_node_id"] + 1, wf["last_link_id"] + 1
    widgets, slots = tape_schema()
    two = len(stages) > 1
    for stage in stages:
        title = None
        if two:
            high = "high" in next(m for m in model_chain(wf, stage) if m["type"] == "UNETLoader")["widgets_values"][0]
            title = f"TAPE Patch Model ({'high' if high else 'low'} noise)"
        tape = _tape_node(next_node, (col_x, y), title, widgets, slots)
        slot = next(k for k, i in enumerate(stage["inputs"]) if i["type"] == "MODEL")
        old = links[stage["inputs"][slot]["link"]]  # ModelSamplingSD3 -> sampler becomes ... -> TAPE
        old[3], old[4] = tape["id"], 0
        tape["inputs"][0]["link"] = old[0]
        new = [next_link, tape["id"], 0, stage["id"], slot, "MODEL"]
        wf["links"].append(new)
        tape["outputs"][0]["links"] = [next_link]
        stage["inputs"][slot]["link"] = next_link
        wf["nodes"].append(tape)
        nodes[tape["id"]] = tape
        next_node, next_link = next_node + 1, next_link + 1
        y = footprint(tape)[-1][3] + GAP + TITLE_H

    text = (
        TAPE_NOTE.format(
            placed=spec.placed.format(plural="s" if two else ""), it="them" if two else "it", extra=spec.note or ""
        ).rstrip()
        + "\n"
    )
    wf["nodes"].append(
        {
            "id": next_node,
            "type": "MarkdownNote",
            "pos": [col_x, y],
            "size": [TAPE_WIDTH, 310 if spec.note else 230],
            "flags": {},
            "order": 0,
            "mode": 0,
            "inputs": [],
            "outputs": [],
            "title": "About TAPE",
            "properties": {},
            "widgets_values": [text],
            "color": TAPE_COLOR,
            "bgcolor": TAPE_BGCOLOR,
        }
    )
    wf["last_node_id"], wf["last_link_id"] = next_node, next_link - 1
    for k, nid in enumerate(execution_order(wf)):
        node_map(wf)[nid]["order"] = k
    wf["nodes"].sort(key=lambda n: n["id"])
    wf["links"].sort(key=lambda lk: lk[0])
    wf["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"comfyui-tape/example_workflows/{spec.name}"))
    wf["revision"] = 0
    wf["extra"] = {
        **{k: v for k, v in wf.get("extra", {}).items() if k != "ds"},
        "ds": fit_view(wf),
        "tape": {
            "template": spec.template,
            "template_package": f"comfyui-workflow-templates {templates_version()}",
            "info": "The official template with TAPE Patch Model in front of each sampler; bypass TAPE to compare.",
        },
    }
    return wf


def rect_bottom(node: dict) -> float:
    return node["pos"][1] + node["size"][1]


# ---- thumbnails -------------------------------------------------------------------------------------------------
LINK_COLORS = {
    "MODEL": "#B39DDB",
    "CLIP": "#FFD500",
    "VAE": "#FF6E6E",
    "CONDITIONING": "#FFA931",
    "LATENT": "#FF9CF9",
    "IMAGE": "#64B5F6",
    "CLIP_VISION": "#A8DADC",
    "CLIP_VISION_OUTPUT": "#ad7452",
    "VIDEO": "#64B5F6",
}
SHORT = {
    "UNETLoader": "Load Diffusion Model",
    "LoraLoaderModelOnly": "LoRA",
    "ModelSamplingSD3": "Model Sampling SD3",
    "TAPEPatchModel": "TAPE Patch Model",
    "KSampler": "KSampler",
    "KSamplerAdvanced": "KSampler (Advanced)",
    "CheckpointLoaderSimple": "Load Checkpoint",
    "BasicGuider": "Basic Guider",
    "SamplerCustom": "SamplerCustom",
}


def _font(size: int, bold: bool = False):
    from PIL import ImageFont

    for name in ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf", "Arial.ttf"):
        for folder in ("/usr/share/fonts/truetype/dejavu", "/Library/Fonts", "C:/Windows/Fonts", ""):
            try:
                return ImageFont.truetype(str(Path(folder) / name) if folder else name, size)
            except OSError:
                continue
    return ImageFont.load_default(size)


def _wrap(draw, text: str, font, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if draw.textlength(trial, font=font) <= width or not line:
            line = trial
        else:
            lines.append(line)
            line = word
    return lines + [line]


def thumbnail(wf: dict, title: str, subtitle: str, size: int = 512):
    """A picture of the graph: the whole graph as a map (TAPE highlighted), then the model path spelled out."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size), "#202020")
    d = ImageDraw.Draw(img, "RGBA")
    d.text((16, 12), title, fill="#f0f0f0", font=_font(24, bold=True))
    d.text((16, 44), subtitle, fill="#a8a8a8", font=_font(15))

    # map of the graph
    top, bottom, pad = 74, 340, 12
    boxes = [rect(n) for n in wf["nodes"]] + [
        (g["bounding"][0], g["bounding"][1], g["bounding"][0] + g["bounding"][2], g["bounding"][1] + g["bounding"][3])
        for g in wf.get("groups", [])
    ]
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    s = min((size - 2 * pad) / (x1 - x0), (bottom - top) / (y1 - y0))
    ox = pad + ((size - 2 * pad) - (x1 - x0) * s) / 2
    oy = top + ((bottom - top) - (y1 - y0) * s) / 2

    def pt(x, y):
        return ox + (x - x0) * s, oy + (y - y0) * s

    d.rectangle([pad - 4, top - 4, size - pad + 4, bottom + 4], fill="#161616")
    for g in wf.get("groups", []):
        gx, gy, gw, gh = g["bounding"]
        c = g.get("color", "#3f789e").lstrip("#")
        rgb = tuple(int(c[i : i + 2], 16) for i in (0, 2, 4))
        d.rectangle([*pt(gx, gy), *pt(gx + gw, gy + gh)], fill=(*rgb, 50), outline=(*rgb, 150))
    nodes = node_map(wf)
    for _, src, sslot, dst, dslot, typ in wf["links"]:
        a, b = nodes[src], nodes[dst]
        p0 = pt(a["pos"][0] + a["size"][0], a["pos"][1] + 10 + 20 * sslot)
        p1 = pt(b["pos"][0], b["pos"][1] + 10 + 20 * dslot)
        k = max(20.0, abs(p1[0] - p0[0]) * 0.5)
        xs, ys = (p0[0], p0[0] + k, p1[0] - k, p1[0]), (p0[1], p0[1], p1[1], p1[1])  # the editor's spline
        curve = [
            tuple(
                sum(c * v for c, v in zip(((1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3), vs))
                for vs in (xs, ys)
            )
            for t in (i / 24 for i in range(25))
        ]
        d.line(curve, fill=LINK_COLORS.get(typ, "#9a9a9a"), width=2 if typ == "MODEL" else 1)
    for n in wf["nodes"]:
        bx = [*pt(*rect(n)[:2]), *pt(*rect(n)[2:])]
        if n["type"] == TAPE_TYPE:
            d.rectangle(bx, fill="#2f8f8f", outline="#9ff5f5", width=2)
        elif n.get("mode", 0) == 4:
            d.rectangle(bx, fill=(110, 60, 130, 90), outline="#6a4a7a")
        else:
            d.rectangle(bx, fill="#3a3a3a" if "Note" not in n["type"] else "#4a3f2a", outline="#5c5c5c")
    for n in wf["nodes"]:
        if n["type"] == TAPE_TYPE:
            bx = [*pt(*rect(n)[:2]), *pt(*rect(n)[2:])]
            f = _font(13, bold=True)
            w = d.textlength("TAPE", font=f)
            d.text(((bx[0] + bx[2] - w) / 2, (bx[1] + bx[3]) / 2 - 8), "TAPE", fill="#ffffff", font=f)

    # the model path, spelled out
    stages = samplers(wf)
    chain = [n for n in model_chain(wf, stages[0])]
    y = bottom + 22
    d.text(
        (16, y),
        "model path" + (f"  (x{len(stages)}: one per sampler)" if len(stages) > 1 else ""),
        fill="#a8a8a8",
        font=_font(14),
    )
    y += 24
    f = _font(13, bold=True)
    gap, arrow = 6, 14
    width = (size - 32 - (len(chain) - 1) * (gap * 2 + arrow)) / len(chain)
    x = 16
    for i, n in enumerate(chain):
        is_tape = n["type"] == TAPE_TYPE
        d.rounded_rectangle(
            [x, y, x + width, y + 62],
            radius=6,
            fill="#2f8f8f" if is_tape else "#353535",
            outline="#9ff5f5" if is_tape else "#5c5c5c",
            width=2 if is_tape else 1,
        )
        lines = _wrap(d, SHORT.get(n["type"], n["type"]), f, int(width) - 8)
        ty = y + 31 - 8 * len(lines)
        for line in lines:
            d.text((x + (width - d.textlength(line, font=f)) / 2, ty), line, fill="#ffffff", font=f)
            ty += 16
        x += width
        if i < len(chain) - 1:
            ax = x + gap
            d.line([(ax, y + 31), (ax + arrow, y + 31)], fill=LINK_COLORS["MODEL"], width=3)
            d.polygon([(ax + arrow, y + 26), (ax + arrow + 5, y + 31), (ax + arrow, y + 36)], fill=LINK_COLORS["MODEL"])
            x += gap * 2 + arrow
    y += 76
    d.text((16, y), "Bypass TAPE (Ctrl+B) to compare with the unpruned video.", fill="#a8a8a8", font=_font(14))
    return img


def write_all():
    for spec in SPECS:
        wf = build(spec)
        problems = overlapping_nodes(wf)
        assert not problems, (spec.name, problems)
        (OUT_DIR / f"{spec.name}.json").write_text(json.dumps(wf, indent=2, ensure_ascii=False) + "\n")
        thumbnail(wf, spec.title, spec.subtitle).save(OUT_DIR / f"{spec.name}.jpg", quality=90)
        print("wrote", spec.name)
    demo = json.loads((OUT_DIR / f"{DEMO}.json").read_text())
    thumbnail(demo, "TAPE testbed demo", "tiny trained testbed model: runs on CPU").save(
        OUT_DIR / f"{DEMO}.jpg", quality=90
    )
    print("wrote", DEMO)


if __name__ == "__main__":
    write_all()
