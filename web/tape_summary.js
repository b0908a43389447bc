// TAPE Patch Model in the editor: an estimate while editing (TAPE.estimate) and the last run's summary from the
// server after each run (TAPE.summary). Both numbers come from the Python cost model (GET /tape/estimate and the
// end-of-run summary), so the node, the console and the README agree on what "block speed-up" means.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { samplerSteps, widget } from "./tape_common.js";



app.registerExtension({
  name: "TAPE.estimate",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== "TAPEPatchModel") return;
    const onDrawForeground = nodeType.prototype.onDrawForeground;
    nodeType.prototype.onDrawForeground = function (ctx) {
      onDrawForeground?.apply(this, arguments);
      if (this.flags?.collapsed) return;
      const keep = widget(this, "keep_ratio");
      const enabled = widget(this, "enabled");
      const key = `${keep}|${samplerSteps()}`;
      if (enabled && keep < 1 && this.tapeEstimateKey !== key) {
        this.tapeEstimateKey = key;
        const q = new URLSearchParams({ keep_ratio: keep, steps: samplerSteps() });
        api.fetchApi(`/tape/estimate?${q}`).then((r) => r.json()).then((e) => {
          this.tapeEstimate = e.error ? null : e;
          this.setDirtyCanvas(true, false);
        });
      }
      const est = this.tapeEstimate;
      const lines = [];
      if (!enabled || keep >= 1) lines.push("TAPE off");
      else if (est) lines.push(`est. blocks ~${est.block_speedup.toFixed(2)}x (${est.reference}, default schedule)`);
      if (this.tapeSummary) lines.push(this.tapeSummary);
      ctx.save();
      ctx.font = "11px sans-serif";
      lines.forEach((text, i) => {
        ctx.fillStyle = i === 0 ? "#8a8" : "#ccc";
        ctx.fillText(text, 8, this.size[1] + 14 + 14 * i);
      });
      ctx.restore();
    };
  },
});

app.registerExtension({
  name: "TAPE.summary",
  async setup() {
    api.addEventListener("tape.summary", ({ detail }) => {
      const node = app.graph?.getNodeById(Number(detail.node));
      if (!node || node.comfyClass !== "TAPEPatchModel") return;
      const saved = Math.round(100 * detail.block_compute_saved);
      const speedup = 1 / Math.max(1e-6, 1 - detail.block_compute_saved);
      node.tapeSummary =
        `last run: pruned ${detail.steps_pruned}/${detail.steps_seen} steps, ` +
        `${detail.blocks_pruned}/${detail.blocks} blocks, kept ${detail.mean_keep.toFixed(2)}, ` +
        `~${saved}% block compute saved (est. ${speedup.toFixed(2)}x on the blocks)` +
        (detail.warning ? " - pruned nothing: see console" : "");
      node.setDirtyCanvas(true, true);
    });
  },
});
