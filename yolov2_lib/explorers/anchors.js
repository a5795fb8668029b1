// The anchor editor of chapter 3 (anchor boxes by k-means): yolov2_lib/explorers/anchors.py.
// Same formulas as yolov2_lib/anchors.py: shape IoU of centre-aligned boxes, mean best IoU
// (mean_iou), and AnchorKMeans started from given centres (mean update).
YOLOv2Explorers.define("anchors", (root, data, lib) => {
  const grid = data.grid, n = data.boxes.length;
  const W = Float64Array.from(data.boxes, (b) => b[0]);  // (n,) widths, fractions of the image
  const H = Float64Array.from(data.boxes, (b) => b[1]);  // (n,) heights
  const keys = Object.keys(data.centres).map(Number).sort((a, b) => a - b);
  const colors = data.colors;
  const count = (x) => x.toLocaleString("en-US");
  const pct = (x) => (100 * x).toFixed(1) + " %";

  // shape IoU of box i with the centre (cw, ch), as boxes.wh_iou
  const iou = (i, cw, ch) => {
    const inter = Math.min(W[i], cw) * Math.min(H[i], ch);
    return inter / (W[i] * H[i] + cw * ch - inter);
  };
  // assignment step: the centre of highest IoU (the first on a tie); returns how many labels changed
  const assign = (centres, labels, best) => {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      let top = -1, label = 0;
      for (let j = 0; j < centres.length; j++) {
        const v = iou(i, centres[j][0], centres[j][1]);
        if (v > top) { top = v; label = j; }
      }
      if (labels[i] !== label) changed++;
      labels[i] = label;
      best[i] = top;
    }
    return changed;
  };
  const meanOf = (values) => { let s = 0; for (const v of values) s += v; return s / values.length; };
  const fractions = (cells) => cells.map(([w, h]) => [w / grid, h / grid]);
  const meanIou = (cells) => {
    const best = new Float64Array(n);
    assign(fractions(cells), new Int32Array(n), best);
    return meanOf(best);
  };
  const variance = (x) => { const m = meanOf(x); return meanOf(x.map((v) => (v - m) * (v - m))); };
  const tol = data.kmeans.tol * (variance(W) + variance(H)) / 2;

  // AnchorKMeans(n_clusters=k, init=start).fit(boxes): Lloyd iterations with the mean update;
  // an empty cluster restarts at the box farthest from its centre; stop when no box changes
  // cluster or the squared centre shift is at most tol; centres sorted by area.
  const kmeans = (start) => {
    const k = start.length;
    let centres = start.map((c) => c.slice());
    const labels = new Int32Array(n).fill(-1), best = new Float64Array(n);
    assign(centres, labels, best);
    let iterations = 0;
    for (let it = 1; it <= data.kmeans.max_iter; it++) {
      iterations = it;
      const sums = Array.from({length: k}, () => [0, 0]), counts = new Int32Array(k);
      for (let i = 0; i < n; i++) { sums[labels[i]][0] += W[i]; sums[labels[i]][1] += H[i]; counts[labels[i]]++; }
      const next = centres.map((c, j) => counts[j] ? [sums[j][0] / counts[j], sums[j][1] / counts[j]] : c.slice());
      const empty = [...counts.keys()].filter((j) => counts[j] === 0);
      if (empty.length) {
        const own = Float64Array.from({length: n}, (_, i) => 1 - iou(i, centres[labels[i]][0], centres[labels[i]][1]));
        const far = [...own.keys()].sort((a, b) => own[b] - own[a] || b - a);
        empty.forEach((j, r) => { next[j] = [W[far[r]], H[far[r]]]; });
      }
      let shift = 0;
      next.forEach((c, j) => { shift += (c[0] - centres[j][0]) ** 2 + (c[1] - centres[j][1]) ** 2; });
      centres = next;
      const changed = assign(centres, labels, best);
      if (changed === 0 && empty.length === 0) break;
      if (shift <= tol) break;
    }
    const byArea = [...centres.keys()].sort((a, b) => centres[a][0] * centres[a][1] - centres[b][0] * centres[b][1]);
    return {centres: byArea.map((j) => centres[j]), iterations};
  };

  // ---------------------------------------------------------------- the page
  let k = data.k, anchors = [];  // anchors: (k, 2) in grid cells
  const labels = new Int32Array(n).fill(-1), best = new Float64Array(n);

  const kSelect = lib.select("k", keys.map((key) => [key, key]), k, (v) => { k = Number(v); reset(); }, "anchor-k");
  const kmeansButton = lib.button("k-means from these anchors", () => runKmeans(), "anchor-kmeans");
  const resetButton = lib.button("back to the k-means centres", () => reset(), "anchor-reset");
  const score = lib.el("div", {class: "anchor-score"});
  const result = lib.el("div", {class: "anchor-kmeans-result"});
  const rows = lib.el("div", {class: "anchor-rows"});
  root.append(
    lib.el("div", {class: "anchor-sample", text:
      `Computed on ${count(n)} of the ${count(data.total)} boxes (a seeded sample); ` +
      `anchor sizes in cells of the ${grid} x ${grid} grid.`}),
    lib.el("div", {}, kSelect.row, kmeansButton, " ", resetButton), score, rows, result);

  // picture: boxes in the (w, h) plane (left), the anchors' shapes centred together (right)
  const S = 260, X0 = 48, Y0 = 26, R0 = 360;  // panel side, left panel's corner, right panel's x
  const svg = lib.svg("svg", {viewBox: `0 0 ${R0 + S + 40} ${Y0 + S + 42}`, width: R0 + S + 40,
    class: "anchor-figure"});
  const px = (w) => X0 + S * w, py = (h) => Y0 + S * (1 - h);
  const text = (x, y, s, attrs) => {
    const t = lib.svg("text", {x, y, "font-size": 11, "text-anchor": "middle", ...attrs});
    t.textContent = s;
    return t;
  };
  const frame = (x) => lib.svg("rect", {x, y: Y0, width: S, height: S, fill: "none", stroke: "#999"});
  svg.append(frame(X0), frame(R0));
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    svg.append(lib.svg("line", {x1: px(t), x2: px(t), y1: Y0, y2: Y0 + S, stroke: "#ddd"}),
      lib.svg("line", {x1: X0, x2: X0 + S, y1: py(t), y2: py(t), stroke: "#ddd"}),
      text(px(t), Y0 + S + 13, String(t)), text(X0 - 4, py(t) + 4, String(t), {"text-anchor": "end"}));
  }
  svg.append(text(X0 + S / 2, Y0 + S + 30, "box width / image width"),
    text(12, Y0 + S / 2, "box height / image height", {transform: `rotate(-90 12 ${Y0 + S / 2})`}),
    text(X0 + S / 2, 14, `${count(n)} of ${count(data.total)} boxes, by anchor`, {"font-size": 12}),
    text(R0 + S / 2, 14, "the anchors' shapes, centred in the image", {"font-size": 12}));
  const dots = Array.from({length: n}, (_, i) =>
    lib.svg("circle", {cx: px(W[i]).toFixed(1), cy: py(H[i]).toFixed(1), r: 1.6}));
  const points = lib.svg("g", {class: "anchor-points", "fill-opacity": 0.6});
  points.append(...dots);
  const marks = lib.svg("g", {class: "anchor-marks"});
  const shapes = lib.svg("g", {class: "anchor-shapes", fill: "none", "stroke-width": 2});
  const shapesTitle = text(R0 + S / 2, Y0 + S + 16, "");
  svg.append(points, marks, shapes, shapesTitle);
  root.append(svg);

  const cross = ([w, h], color) => {  // an anchor in the (w, h) plane, as draw_clusters' "X"
    const x = px(w), y = py(h), d = `M${x - 6} ${y - 6}L${x + 6} ${y + 6}M${x - 6} ${y + 6}L${x + 6} ${y - 6}`;
    const g = lib.svg("g", {});
    g.append(lib.svg("path", {d, stroke: "black", "stroke-width": 5}),
      lib.svg("path", {d, stroke: color, "stroke-width": 3}));
    return g;
  };
  const shape = ([w, h], color) => {  // clipped to the image
    const cw = Math.min(w, 1), ch = Math.min(h, 1);
    return lib.svg("rect", {x: R0 + S * (0.5 - cw / 2), y: Y0 + S * (0.5 - ch / 2), width: S * cw, height: S * ch,
      stroke: color});
  };

  const redraw = () => {
    const frac = fractions(anchors);
    const before = Int32Array.from(labels);
    assign(frac, labels, best);
    labels.forEach((l, i) => { if (l !== before[i]) dots[i].setAttribute("fill", colors[l]); });
    const ours = meanOf(best), fitted = meanIou(data.centres[k].map(([w, h]) => [w * grid, h * grid]));
    score.replaceChildren("mean IoU ", lib.el("b", {text: pct(ours)}),
      ` with these anchors; ${pct(fitted)} with the k-means centres for k = ${k}`);
    marks.replaceChildren(...frac.map((a, j) => cross(a, colors[j])));
    shapes.replaceChildren(...frac.map((a, j) => shape(a, colors[j])));
    shapesTitle.textContent = anchors.length <= 5
      ? "in grid cells: " + anchors.map(([w, h]) => `${w.toFixed(1)}x${h.toFixed(1)}`).join(", ")
      : `${anchors.length} anchors, centred together`;
    root.dataset.k = String(k);
    root.dataset.anchors = JSON.stringify(anchors);
    root.dataset.meanIou = String(ours);
    root.dataset.centresIou = String(fitted);
  };

  const build = () => {
    rows.replaceChildren(...anchors.map((a, j) => {
      const slider = (name, d, cls) => lib.slider(name, {min: 0.1, max: grid, step: 0.01, value: a[d], cls},
        (v) => { anchors[j][d] = v; redraw(); });
      return lib.el("div", {class: "anchor-row"},
        lib.el("span", {class: "anchor-name", text: `anchor ${j + 1}`,
          style: `color:${colors[j]};font-weight:bold;display:inline-block;min-width:5.5em`}),
        slider("width", 0, "anchor-w").row, slider("height", 1, "anchor-h").row);
    }));
    redraw();
  };

  const reset = () => {
    anchors = data.centres[k].map(([w, h]) => [w * grid, h * grid]);
    result.textContent = "";
    delete root.dataset.kmeansIterations;
    build();
  };

  const runKmeans = () => {
    const before = meanIou(anchors);
    const fit = kmeans(fractions(anchors));
    anchors = fit.centres.map(([w, h]) => [w * grid, h * grid]);
    build();
    result.textContent = `k-means from your anchors: ${fit.iterations} iteration${fit.iterations === 1 ? "" : "s"}, ` +
      `mean IoU ${pct(before)} \u2192 ${pct(meanOf(best))} (anchors sorted by area).`;
    root.dataset.kmeansIterations = String(fit.iterations);
  };

  reset();
});
