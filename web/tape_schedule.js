// TAPE.schedulePlot: the keep ratio per sampling step, drawn on the TAPE Budget Schedule node as its widgets
// change. The ratios come from the Python schedule (GET /tape/estimate), for the keep_ratio of the TAPE Patch
// Model it feeds and the steps of the graph's sampler.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { samplerSteps, widget } from "./tape_common.js";

const PLOT_H = 70;

function keepOfTarget(node) {
  for (const linkId of node.outputs?.[0]?.links ?? []) {
    const link = app.graph.links[linkId];
    const target = link && app.graph.getNodeById(link.target_id);
    const keep = target && widget(target, "keep_ratio");
    if (typeof keep === "number") return keep;
  }
  return 0.5;
}

app.registerExtension({
  name: "TAPE.schedulePlot",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== "TAPEBudgetSchedule") return;
    const onDrawForeground = nodeType.prototype.onDrawForeground;
    nodeType.prototype.onDrawForeground = function (ctx) {
      onDrawForeground?.apply(this, arguments);
      if (this.flags?.collapsed) return;
      const params = {
        keep_ratio: keepOfTarget(this),
        steps: samplerSteps(),
        preset: widget(this, "preset"),
        spread: widget(this, "spread"),
        warmup_steps: widget(this, "warmup_steps"),
        dense_last_steps: widget(this, "dense_last_steps"),
        custom_ratios: widget(this, "custom_ratios") ?? "",
        warmup_keep: widget(this, "warmup_keep") ?? 1.0,
      };
      const key = JSON.stringify(params);
      if (this.tapePlotKey !== key) {
        this.tapePlotKey = key;
        api.fetchApi(`/tape/estimate?${new URLSearchParams(params)}`).then((r) => r.json()).then((e) => {
          this.tapePlot = e;
          this.setDirtyCanvas(true, false);
        });
      }
      const plot = this.tapePlot;
      if (!plot) return;
      // the plot sits under the last widget; grow the node to hold it (a saved workflow restores its old size)
      const top = (this.widgets?.at(-1)?.last_y ?? 0) + 30;
      if (this.size[1] < top + PLOT_H + 8) this.setSize([this.size[0], top + PLOT_H + 8]);
      const x0 = 10, w = this.size[0] - 20, y0 = top, y1 = top + PLOT_H - 16;
      ctx.save();
      ctx.font = "10px sans-serif";
      if (plot.error) {
        ctx.fillStyle = "#e88";
        ctx.fillText(plot.error, x0, y1);
        ctx.restore();
        return;
      }
      const n = plot.ratios.length, bw = w / n;
      ctx.fillStyle = "#222";
      ctx.fillRect(x0, y0, w, y1 - y0);
      plot.ratios.forEach((r, i) => {
        const h = (y1 - y0) * r;
        ctx.fillStyle = r >= 1 ? "#777" : "#6a6";
        ctx.fillRect(x0 + i * bw + 0.5, y1 - h, Math.max(1, bw - 1), h);
      });
      ctx.fillStyle = "#ccc";
      ctx.fillText(`keep per step (${n} steps; grey = dense)  est. blocks ~${plot.block_speedup.toFixed(2)}x`, x0,
        y1 + 12);
      ctx.restore();
    };
  },
});
