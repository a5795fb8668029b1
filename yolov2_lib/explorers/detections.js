// Chapter 8's detections explorer: a detector's boxes at every input size, computed in advance
// by yolov2_lib.detect.Detector, filtered by score in the page (yolov2_lib/explorers/detections.py).
YOLOv2Explorers.define("detections", (root, data, lib) => {
  const sizes = data.sizes, names = data.class_names, colors = data.colors;
  const state = {image: data.image, size: sizes.indexOf(data.size), score: data.score};

  const chooser = lib.select("image", data.images.map((im, k) => [k, im.id]), state.image,
    (v) => { state.image = Number(v); draw(); }, "yx-image");
  const size = lib.slider("input", {min: 0, max: sizes.length - 1, step: 1, value: state.size, cls: "yx-size",
    format: (k) => `${sizes[k]} (${sizes[k] / 32} x ${sizes[k] / 32} cells)`}, (k) => { state.size = k; draw(); });
  const score = lib.slider("score", {min: data.min_score, max: Math.max(0.95, data.min_score), step: 0.05,
                                     value: state.score, cls: "yx-score"}, (v) => { state.score = v; draw(); });
  const swatch = (color, text, dashed) => lib.el("span", {class: "yx-key", style: "margin-right:12px"},
    lib.el("span", {style: `display:inline-block;width:18px;height:10px;vertical-align:middle;margin-right:4px;` +
      (dashed ? "border:2px dashed white;background:#555" : `border:2px solid ${color}`)}), text);
  root.append(lib.el("div", {class: "yx-controls"}, chooser.row, size.row, score.row),
    lib.el("div", {class: "yx-legend"}, ...names.map((n, c) => swatch(colors[c], n)), swatch("", "ground truth", true)));
  const count = lib.el("div", {class: "yx-count"});
  const figure = lib.el("div", {class: "yx-picture"});
  root.append(count, figure);

  function draw() {
    const im = data.images[state.image], s = sizes[state.size], g = s / 32;
    const shown = im.detections[String(s)].filter((d) => d[4] >= state.score);
    const svg = lib.photo(im.photo, im.width, im.height);
    const stroke = Math.max(1, im.width / 320);
    svg.append(lib.grid(im.width, im.height, g, g, {"stroke-opacity": 0.5, "stroke-width": stroke / 2, class: "yx-grid"}));
    for (const [x1, y1, x2, y2] of im.gt) {
      svg.append(lib.rect([x1, y1, x2, y2], {fill: "none", stroke: "white", "stroke-width": stroke,
                                              "stroke-dasharray": `${4 * stroke} ${3 * stroke}`, class: "yx-truth"}));
    }
    for (const [x1, y1, x2, y2, p, c] of shown.slice().reverse()) {  // the best on top
      const box = lib.rect([x1, y1, x2, y2], {fill: "none", stroke: colors[c], "stroke-width": 1.5 * stroke, class: "yx-det"});
      const tip = lib.svg("title");
      tip.textContent = `${names[c]} ${p.toFixed(2)}`;
      box.append(tip);
      svg.append(box);
    }
    figure.replaceChildren(svg);
    const perClass = names.map((n, c) => `${n} ${shown.filter((d) => d[5] === c).length}`).join(", ");
    count.textContent = `${im.id} at ${s} x ${s} (${g} x ${g} cells): ${shown.length} boxes with a score of at least ` +
      `${state.score.toFixed(2)} (${perClass}); ${im.gt.length} objects in the ground truth`;
    Object.assign(root.dataset, {image: im.id, size: s, score: state.score, count: shown.length});
  }
  draw();
});
