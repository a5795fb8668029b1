// Chapter 4's head explorer: one cell and one anchor of the head, its 5 + C numbers decoded
// as yolov2_lib.viz.describe_anchor does, and its box over the photo (yolov2_lib/explorers/head.py).
YOLOv2Explorers.define("head", (root, data, lib) => {
  const [H, W] = data.grid, A = data.anchors.length, C = data.num_classes, K = 5 + C;
  const {width, height} = data;
  const state = {row: data.row, col: data.col, anchor: data.anchor};

  // the anchor's 5 + C raw numbers, stored (H, W, A, 5 + C)
  const numbers = (r, c, a) => data.raw.slice(((r * W + c) * A + a) * K, ((r * W + c) * A + a + 1) * K);

  // viz.describe_anchor: sigmoid, p exp(t), sigmoid, softmax over the classes
  function decoded(t, a) {
    const [pw, ph] = data.anchors[a];
    const logits = t.slice(5), top = Math.max(...logits);
    const e = logits.map((v) => Math.exp(v - top)), total = e.reduce((s, v) => s + v, 0);
    return [lib.sigmoid(t[0]), lib.sigmoid(t[1]), pw * Math.exp(t[2]), ph * Math.exp(t[3]), lib.sigmoid(t[4]),
            ...e.map((v) => v / total)];
  }

  const cellW = width / W, cellH = height / H, font = width / 40;
  const pick = (label, n, key, text, cls) => lib.select(label, Array.from({length: n}, (_, k) => [k, text(k)]), state[key],
    (v) => { state[key] = Number(v); draw(); }, cls);
  const controls = lib.el("div", {class: "yx-controls"},
    pick("row", H, "row", String, "yx-row").row,
    pick("col", W, "col", String, "yx-col").row,
    pick("anchor", A, "anchor", (a) => `${a}: ${data.anchors[a][0].toFixed(2)} x ${data.anchors[a][1].toFixed(2)}`, "yx-anchor").row);
  const caption = lib.el("div", {class: "yx-caption"});
  const figure = lib.el("div", {class: "yx-picture"});
  const table = lib.el("table", {class: "yx-table"});
  const style = lib.el("style", {text:
    ".yolov2-head .yx-table{border-collapse:collapse;font-size:12px;margin-top:6px}" +
    ".yolov2-head .yx-table td,.yolov2-head .yx-table th{padding:1px 8px;text-align:right;font-variant-numeric:tabular-nums}" +
    ".yolov2-head .yx-table td.yx-name,.yolov2-head .yx-table td.yx-meaning,.yolov2-head .yx-table th.yx-name," +
    ".yolov2-head .yx-table th.yx-meaning{text-align:left}.yolov2-head .yx-top{font-weight:bold}" +
    ".yolov2-head .yx-table tr.yx-box-field td{background:#FFF4DD}.yolov2-head .yx-table tr.yx-objectness td{background:#E6F5EF}"});
  root.append(style, controls, caption, figure, table);

  function draw() {
    const {row, col, anchor} = state;
    const t = numbers(row, col, anchor), d = decoded(t, anchor);
    const [pw, ph] = data.anchors[anchor];
    const cx = (col + d[0]) * cellW, cy = (row + d[1]) * cellH, bw = d[2] * cellW, bh = d[3] * cellH;
    const box = [cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2];
    const px = (col + 0.5) * cellW, py = (row + 0.5) * cellH;
    const prior = [px - pw * cellW / 2, py - ph * cellH / 2, px + pw * cellW / 2, py + ph * cellH / 2];
    const first = anchor * K;

    caption.textContent = `cell (row ${row}, col ${col}), anchor ${anchor}: channels ${first} to ${first + K - 1} ` +
      `of the ${A * K}, at position (${row}, ${col}) of each ${H} x ${W} channel`;
    const svg = lib.photo(data.photo, width, height);
    svg.append(lib.grid(width, height, H, W),
      lib.rect([col * cellW, row * cellH, (col + 1) * cellW, (row + 1) * cellH],
               {fill: data.colors.cell, "fill-opacity": 0.35, class: "yx-cell"}),
      lib.rect(prior, {fill: "none", stroke: "white", "stroke-width": 1.5, "stroke-dasharray": "2 3", class: "yx-prior"}),
      lib.rect(box, {fill: "none", stroke: data.colors.box, "stroke-width": 2.5, class: "yx-box"}),
      lib.svg("circle", {cx, cy, r: font / 3, fill: data.colors.box, stroke: "white", class: "yx-centre"}));
    const label = lib.svg("text", {x: Math.max(0, box[0]) + 2, y: Math.max(font, box[1] - 3), "font-size": font,
      fill: "white", stroke: data.colors.box, "stroke-width": font / 4, "paint-order": "stroke", class: "yx-box-label"});
    label.textContent = `decoded box, P(object) ${d[4].toFixed(2)}`;
    svg.append(label);
    figure.replaceChildren(svg);

    const top = 5 + d.slice(5).indexOf(Math.max(...d.slice(5)));
    const head = lib.el("tr", {}, ...["channel", "name", "raw", "decoded", "meaning"].map(
      (h) => lib.el("th", {class: "yx-" + h, text: h})));
    const kind = (e) => (e < 4 ? "yx-box-field" : e === 4 ? "yx-objectness" : "yx-class" + (e === top ? " yx-top" : ""));
    const rows = t.map((v, e) => lib.el("tr", {class: kind(e)},
      lib.el("td", {class: "yx-channel", text: String(first + e)}),
      lib.el("td", {class: "yx-name", text: data.names[e]}),
      lib.el("td", {class: "yx-raw", text: lib.fixed(v, 3, {sign: true})}),
      lib.el("td", {class: "yx-decoded", text: lib.fixed(d[e], 4)}),
      lib.el("td", {class: "yx-meaning", text: data.meanings[e]})));
    table.replaceChildren(lib.el("thead", {}, head), lib.el("tbody", {}, ...rows));

    Object.assign(root.dataset, {row, col, anchor, box: JSON.stringify(box), prior: JSON.stringify(prior)});
  }
  draw();
});
