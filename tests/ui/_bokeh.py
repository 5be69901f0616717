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
      const texts = labels.items.map(b => typeof b.text === 'string' ? b.text : String(b.text));
      let boxes = null;
      try {
        boxes = labels.items.map((b, i) => {
          const size = b.size();
          const extent = dim === 0 ? size.width : size.height;
          return [centres[i] - extent / 2, centres[i] + extent / 2];
        });
      } catch (e) { boxes = null; }  // labels that are not plain text (categorical axes)
      axes[side] = {ticks: Array.from(coords), labels: texts, boxes: boxes};
    }
    out[key] = axes;
  }
  return out;
}"""


def axes(page: Any) -> dict[str, Any]:
    """`AXES` evaluated on ``page``."""
    return dict(page.evaluate(AXES))


#: Page coordinates of data point (x, y) on the figure whose title starts with ``title`` (the
#: first untitled figure for ""), and the figure's drag tool of type ``tool`` made active.
_SCREEN = """([title, points, tool]) => {
  const all = [];
  const seen = new Set();
  const walk = (v) => {
    if (seen.has(v)) return;
    seen.add(v); all.push(v);
    for (const c of v.children()) walk(c);
  };
  for (const root of Bokeh.index) walk(root);
  const fig = all.find(v => (v.model.type === 'Figure' || v.model.type === 'Plot')
      && (title ? (v.model.title && v.model.title.text.startsWith(title))
                : !(v.model.title && v.model.title.text)));
  if (!fig) return null;
  if (tool) {
    const t = fig.model.toolbar.tools.find(t => t.type === tool);
    if (!t) return null;
    fig.model.toolbar.active_drag = t;
  }
  const rect = fig.canvas_view.el.getBoundingClientRect();
  return points.map(([x, y]) => [rect.left + fig.frame.x_scale.compute(x),
                                 rect.top + fig.frame.y_scale.compute(y)]);
}"""


def screen(page: Any, title: str, points: list[tuple[float, float]],
           tool: str | None = None) -> list[tuple[float, float]] | None:
    """`_SCREEN` evaluated on ``page``."""
    out = page.evaluate(_SCREEN, [title, [list(p) for p in points], tool])
    return None if out is None else [(float(a), float(b)) for a, b in out]


def drag(page: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    """A mouse drag from ``start`` to ``end`` (page coordinates), in steps."""
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move((start[0] + end[0]) / 2, (start[1] + end[1]) / 2, steps=5)
    page.mouse.move(*end, steps=5)
    page.mouse.up()


#: Every Bokeh glyph renderer's data column ``name`` on figures whose title starts with ``title``.
_COLUMN = """([title, glyph, name]) => {
  const models = Bokeh.documents.flatMap(d => Array.from(d.all_models));
  const figs = models.filter(m => m.type === 'Figure' && m.title && m.title.text
                                  && m.title.text.startsWith(title));
  const out = [];
  for (const f of figs) for (const r of f.renderers) {
    if (r.type !== 'GlyphRenderer' || r.glyph.type !== glyph) continue;
    const col = r.data_source.data[name];
    if (col) out.push(...Array.from(col));
  }
  return out;
}"""


def column(page: Any, title: str, glyph: str, name: str) -> list[Any]:
    return list(page.evaluate(_COLUMN, [title, glyph, name]))


#: Columns ``names`` of every glyph renderer of type ``glyph`` on the figures on the page (those
#: with a view: a document keeps models a re-render replaced) whose title starts with ``title``,
#: read together: {name: [values, renderer after renderer]}, plus "renderer" (the
#: renderer's number) for each row.
COLUMNS = """([title, glyph, names]) => {
  const views = [];
  const seen = new Set();
  const walk = (v) => {
    if (seen.has(v)) return;
    seen.add(v); views.push(v);
    for (const c of v.children()) walk(c);
  };
  for (const root of Bokeh.index) walk(root);
  const figs = views.map(v => v.model).filter(m => m.type === 'Figure' && m.title
                                               && m.title.text && m.title.text.startsWith(title));
  const out = {renderer: []};
  for (const n of names) out[n] = [];
  let k = 0;
  for (const f of figs) for (const r of f.renderers) {
    if (r.type !== 'GlyphRenderer' || r.glyph.type !== glyph) continue;
    const data = r.data_source.data;
    const length = r.data_source.get_length() || 0;
    for (let i = 0; i < length; i++) {
      out.renderer.push(k);
      for (const n of names) out[n].push(data[n] === undefined ? null : data[n][i]);
    }
    k++;
  }
  return out;
}"""


def columns(page: Any, title: str, glyph: str, names: list[str]) -> dict[str, list[Any]]:
    """`COLUMNS` evaluated on ``page``: the columns of one moment of the page."""
    return dict(page.evaluate(COLUMNS, [title, glyph, names]))
