// Chapter 5's location explorer: t_x, t_y, t_w, t_h of one cell and anchor read YOLO v2's way
// (decode.decode_boxes) and RPN-style (viz.draw_location), over the photo
// (yolov2_lib/explorers/location.py).
YOLOv2Explorers.define("location", (root, data, lib) => {
  const S = data.grid, {width, height} = data, colors = data.colors;
  const state = {t: data.t.slice(), row: data.row, col: data.col, anchor: data.anchor};
  const cellW = width / S, cellH = height / S, font = width / 40;

  // boxes as (cx, cy, w, h) in grid cells
  function boxes() {
    const [tx, ty, tw, th] = state.t, {row, col} = state, [pw, ph] = data.anchors[state.anchor];
    return {
      prior: [col + 0.5, row + 0.5, pw, ph],
      yolo: [lib.sigmoid(tx) + col, lib.sigmoid(ty) + row, pw * Math.exp(tw), ph * Math.exp(th)],
      rpn: [col + 0.5 + tx * pw, row + 0.5 + ty * ph, pw * Math.exp(tw), ph * Math.exp(th)],
    };
  }
  const pixels = ([cx, cy, w, h]) => [(cx - w / 2) * cellW, (cy - h / 2) * cellH, (cx + w / 2) * cellW, (cy + h / 2) * cellH];

  const names = ["t_x", "t_y", "t_w", "t_h"];
  const sliders = names.map((name, k) => lib.slider(name,
    {min: -data.t_range, max: data.t_range, step: "any", value: state.t[k], cls: "yx-" + name},
    (v) => { state.t[k] = v; draw(); }));
  const pick = (label, n, key, text) => lib.select(label, Array.from({length: n}, (_, k) => [k, text(k)]), state[key],
    (v) => { state[key] = Number(v); draw(); }, "yx-" + key);
  const reset = lib.button("t = 0", () => {
    sliders.forEach((s, k) => { s.set(0); state.t[k] = 0; });
    draw();
  }, "yx-reset");
  const swatch = (color, dash, text) => lib.el("span", {class: "yx-key", style: "margin-right:14px"},
    lib.el("span", {style: `display:inline-block;width:22px;height:0;border-top:2.5px ${dash} ${color};` +
                           "vertical-align:middle;margin-right:4px"}), text);
  root.append(
    lib.el("div", {class: "yx-controls"}, ...sliders.map((s) => s.row)),
    lib.el("div", {class: "yx-controls"},
      pick("row", S, "row", String).row, pick("col", S, "col", String).row,
      pick("anchor", data.anchors.length, "anchor",
           (a) => `${a}: ${data.anchors[a][0].toFixed(2)} x ${data.anchors[a][1].toFixed(2)}`).row, reset),
    lib.el("div", {class: "yx-legend"}, swatch(colors.prior, "dotted", "anchor (t = 0)"),
      swatch(colors.yolo, "solid", "YOLO v2: sigmoid offset"), swatch(colors.rpn, "dashed", "unconstrained: x_a + t_x w_a")));
  const figure = lib.el("div", {class: "yx-picture"});
  const lines = lib.el("pre", {class: "yx-lines"});
  root.append(figure, lines);

  function draw() {
    const {row, col} = state, b = boxes(), px = {};
    for (const k of ["prior", "yolo", "rpn"]) px[k] = pixels(b[k]);
    const svg = lib.photo(data.photo, width, height, {margin: data.margin, maxWidth: 780});
    const [rx, ry] = [b.rpn[0] * cellW, b.rpn[1] * cellH], arm = font / 2;
    svg.append(lib.grid(width, height, S, S),
      lib.rect([col * cellW, row * cellH, (col + 1) * cellW, (row + 1) * cellH],
               {fill: colors.cell, "fill-opacity": 0.35, class: "yx-cell"}),
      lib.rect(px.prior, {fill: "none", stroke: colors.prior, "stroke-width": 1.5, "stroke-dasharray": "2 3", class: "yx-prior"}),
      lib.rect(px.yolo, {fill: "none", stroke: colors.yolo, "stroke-width": 2.5, class: "yx-yolo"}),
      lib.svg("circle", {cx: b.yolo[0] * cellW, cy: b.yolo[1] * cellH, r: font / 3, fill: colors.yolo, stroke: "white"}),
      lib.rect(px.rpn, {fill: "none", stroke: colors.rpn, "stroke-width": 2, "stroke-dasharray": "8 5", class: "yx-rpn"}),
      lib.svg("path", {d: `M${rx - arm},${ry - arm}L${rx + arm},${ry + arm}M${rx - arm},${ry + arm}L${rx + arm},${ry - arm}`,
                       stroke: colors.rpn, "stroke-width": 3, class: "yx-rpn-centre"}));
    figure.replaceChildren(svg);
    // the lines of the kernel-backed widget: centre and size in grid cells
    lines.textContent = ["yolo", "rpn"].map((k) => {
      const [cx, cy, w, h] = b[k];
      return `${k.padStart(4)}: centre (${lib.fixed(cx, 2, {width: 6})}, ${lib.fixed(cy, 2, {width: 6})}) ` +
        `size ${lib.fixed(w, 2, {width: 5})} x ${lib.fixed(h, 2, {width: 5})} (grid cells)`;
    }).join("\n");
    Object.assign(root.dataset, {row, col, anchor: state.anchor, t: JSON.stringify(state.t),
      prior: JSON.stringify(px.prior), box: JSON.stringify(px.yolo), rpn: JSON.stringify(px.rpn)});
  }
  draw();
});
