// Shared by the TAPE frontend extensions (no extension of its own).
import { app } from "../../scripts/app.js";

export const widget = (node, name) => node.widgets?.find((w) => w.name === name)?.value;

// The steps of the graph's sampler (the first node with a `steps` widget), else 20.
export function samplerSteps() {
  for (const n of app.graph?._nodes ?? []) {
    const steps = widget(n, "steps");
    if (typeof steps === "number") return steps;
  }
  return 20;
}
