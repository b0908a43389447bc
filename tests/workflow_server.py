"""Run example workflows on a real ComfyUI server (main.py --cpu) with this pack installed, as a user would.

The server gets its own base directory (models, input, output, user, custom_nodes), so a user's ComfyUI models
and other packs never take part. Its custom_nodes/ holds this checkout (as ComfyUI-TAPE) and the test-only nodes of
tests/tape_test_nodes.py. The UI-format workflow JSON (what example_workflows/ ships and the editor saves) is
converted to the API prompt format with the server's own /object_info, then queued through POST /prompt.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from comfy_harness import REPO, find_comfyui

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
FRONTEND_ONLY = {"Note", "MarkdownNote"}  # editor-only nodes: not in /object_info, never sent to the server
TEST_NODES = Path(__file__).resolve().parent / "tape_test_nodes.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyServer:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.output_dir = workdir / "output"
        self.proc = None

    def start(self, timeout: float = 120.0):
        nodes_dir = self.workdir / "custom_nodes"
        nodes_dir.mkdir(parents=True, exist_ok=True)
        for name, target in (("ComfyUI-TAPE", REPO), (TEST_NODES.name, TEST_NODES)):
            if not (nodes_dir / name).exists():
                (nodes_dir / name).symlink_to(target, target_is_directory=target.is_dir())
        cmd = [
            sys.executable,
            "main.py",
            "--cpu",
            "--listen",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--disable-auto-launch",
            "--base-directory",  # models/, input/, user/, custom_nodes/ of its own
            str(self.workdir),
            "--output-directory",
            str(self.output_dir),
            "--temp-directory",
            str(self.workdir / "temp"),
        ]
        self.log = open(self.workdir / "server.log", "w")
        self.proc = subprocess.Popen(
            cmd,
            cwd=find_comfyui(),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("ComfyUI server exited:\n" + self.server_log())
            try:
                self.get("/system_stats")
                return self
            except OSError:
                time.sleep(0.5)
        raise TimeoutError("ComfyUI server did not come up:\n" + self.server_log())

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.log.close()

    def server_log(self, since: int | None = None) -> str:
        """The log from character `since` on (a log_size() taken before a run), else its last 5000 characters."""
        text = (self.workdir / "server.log").read_text()
        return text[since:] if since is not None else text[-5000:]

    def log_size(self) -> int:
        return len((self.workdir / "server.log").read_text())

    def get(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=10) as r:
            return json.loads(r.read())

    def get_raw(self, path: str) -> tuple[int, str, bytes]:
        """status, content type, body (no exception on 4xx/5xx)."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as r:
                return r.status, r.headers.get_content_type(), r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get_content_type(), e.read()

    def post(self, path: str, body: dict):
        req = urllib.request.Request(
            self.url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"POST {path} -> {e.code}: {e.read().decode()[:3000]}") from None

    def run(self, prompt: dict, timeout: float = 600.0, targets: list[str] | None = None) -> dict:
        """Queue an API-format prompt, wait for it, return its history entry (raises with the error on failure).
        targets: run only these output nodes and what they need (ComfyUI's partial execution)."""
        body = {"prompt": prompt}
        if targets is not None:
            body["partial_execution_targets"] = list(targets)
        pid = self.post("/prompt", body)["prompt_id"]
        deadline = time.time() + timeout
        while time.time() < deadline:
            hist = self.get(f"/history/{pid}")
            if pid in hist:
                entry = hist[pid]
                status = entry.get("status", {})
                if status.get("status_str") == "error":
                    raise RuntimeError(f"prompt failed: {json.dumps(status.get('messages'))[:3000]}")
                return entry
            time.sleep(0.3)
        raise TimeoutError(f"prompt {pid} did not finish\n" + self.server_log())


def ui_to_api(workflow: dict, object_info: dict) -> dict:
    """UI workflow -> API prompt. Muted nodes (mode 2) and notes are dropped; bypassed ones (mode 4) pass their
    first input of each output type through, as the editor does."""
    nodes = {n["id"]: n for n in workflow["nodes"]}
    links = {lk[0]: lk for lk in workflow["links"]}  # id -> [id, from, from_slot, to, to_slot, type]

    def source(link_id):
        """[node id, slot] feeding this link, or None: a bypassed node with no input of the type passes nothing."""
        _, src, slot, _, _, typ = links[link_id]
        node = nodes[src]
        while node.get("mode", 0) == 4:  # bypass: follow the input of the same type
            inp = next((i for i in node["inputs"] if i["type"] == typ and i.get("link") is not None), None)
            if inp is None:
                return None
            _, src, slot, _, _, _ = links[inp["link"]]
            node = nodes[src]
        return [str(src), slot]

    prompt = {}
    for nid, node in nodes.items():
        if node.get("mode", 0) in (2, 4) or node["type"] in FRONTEND_ONLY:
            continue
        info = object_info[node["type"]]
        linked = {i["name"]: i["link"] for i in node.get("inputs", []) if i.get("link") is not None}
        order = info.get("input_order", {})
        names = list(order.get("required", [])) + list(order.get("optional", []))
        spec = {**info["input"].get("required", {}), **info["input"].get("optional", {})}
        values = list(node.get("widgets_values", []))
        inputs = {}
        for name in names:
            typ, opts = spec[name][0], (spec[name][1] if len(spec[name]) > 1 else {})
            if name in linked:
                src = source(linked[name])
                if src is not None:
                    inputs[name] = src
                continue
            if not (isinstance(typ, list) or typ in WIDGET_TYPES) or not values:
                continue
            inputs[name] = values.pop(0)
            if opts.get("control_after_generate") and values:
                values.pop(0)  # the editor stores "fixed"/"randomize" right after the seed
        prompt[str(nid)] = {"class_type": node["type"], "inputs": inputs}
    return prompt


def set_widget(workflow: dict, node_type: str, index: int, value):
    """Set widget `index` of every node of this type (or with this node id, given as an int)."""
    for node in workflow["nodes"]:
        if node["type"] == node_type or node["id"] == node_type:
            node["widgets_values"][index] = value


def set_mode(workflow: dict, node_type: str, mode: int):
    for node in workflow["nodes"]:
        if node["type"] == node_type or node["id"] == node_type:
            node["mode"] = mode


def load_workflow(name: str) -> dict:
    return json.loads((REPO / "example_workflows" / name).read_text())
