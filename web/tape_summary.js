// TAPE.estimate: show the estimated transformer-block speed-up under the TAPE Patch Model node while editing.
// The estimate uses the same per-block cost split as the Python summary line (attention ~70% of a block at 480p).
import { app } from "../../scripts/app.js";

const ATTENTION_SHARE = 0.7;

function blockSpeedup(keep) {
  const cost = ATTENTION_SHARE * keep * keep + (1 - ATTENTION_SHARE) * keep;
  return 1 / Math.max(cost, 1e-6);
}

app.registerExtension({
  name: "TAPE.estimate",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== "TAPEPatchModel") return;
    const onDrawForeground = nodeType.prototype.onDrawForeground;
    nodeType.prototype.onDrawForeground = function (ctx) {
      onDrawForeground?.apply(this, arguments);
      const keep = this.widgets?.find((w) => w.name === "keep_ratio")?.value;
      const enabled = this.widgets?.find((w) => w.name === "enabled")?.value;
      if (keep === undefined || this.flags?.collapsed) return;
      const text = !enabled || keep >= 1 ? "TAPE off" : `pruned blocks ~${blockSpeedup(keep).toFixed(1)}x (est.)`;
      ctx.save();
      ctx.font = "11px sans-serif";
      ctx.fillStyle = "#8a8";
      ctx.fillText(text, 8, this.size[1] - 6);
      ctx.restore();
    };
  },
});
