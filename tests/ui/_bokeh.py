"""JavaScript probes of the Bokeh views of a page: what the canvas draws is not in the DOM, so the
tests read it from BokehJS itself (axis labels as the formatter renders them, their boxes)."""

from __future__ import annotations

from typing import Any

#: Per plot (by title, or "#<n>" when untitled), per axis: the major tick labels as drawn and
#: their screen boxes [x0, x1] along the axis.
AXES = """() => {
  const out = {};
  let n = 0;
  const views = [];
  for (const root of Bokeh.index) {
    for (const v of Bokeh.index.query(() => true)) views.push(v);
    break;
  }
  const all = [];
  const seen = new Set();
  const walk = (v) => {
    if (seen.has(v)) return;
    seen.add(v);
    all.push(v);
    for (const c of v.children()) walk(c);
  };
  for (const root of Bokeh.index) walk(root);
  for (const v of all) {
    if (v.model.type !== 'Figure' && v.model.type !== 'Plot') continue;
    const key = (v.model.title && v.model.title.text) ? v.model.title.text : ('#' + (n++));
    const axes = {};
    for (const av of all) {
      if (!av.model.type.endsWith('Axis') || av.parent !== v) continue;
      const side = v.model.below.includes(av.model) ? 'x' : (v.model.left.includes(av.model) ? 'y' : 'other');
      if (side === 'other') continue;
      const dim = av.dimension;
      const coords = av.tick_coords.major[dim];
      const labels = av.compute_labels(coords);
      labels.visuals = av.visuals.major_label_text.values();
      const [sxs, sys] = av.scoords(av.tick_coords.major);
      const centres = dim === 0 ? sxs : sys;
      const texts = labels.items.map(b => b.text);
      const boxes = labels.items.map((b, i) => {
        const size = b.size();
        const extent = dim === 0 ? size.width : size.height;
        return [centres[i] - extent / 2, centres[i] + extent / 2];
      });
      axes[side] = {ticks: Array.from(coords), labels: texts, boxes: boxes};
    }
    out[key] = axes;
  }
  return out;
}"""


def axes(page: Any) -> dict[str, Any]:
    """`AXES` evaluated on ``page``."""
    return dict(page.evaluate(AXES))
