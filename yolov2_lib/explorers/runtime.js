// Shared helpers of the in-page explorers (yolov2_lib/explorers). Loaded once per output;
// a second copy on the same page keeps the first registry.
(function () {
  if (window.YOLOv2Explorers) return;
  const components = {};
  const SVG = "http://www.w3.org/2000/svg";
  const lib = {
    // an HTML element with attributes and children
    el(tag, attrs, ...children) {
      const node = document.createElement(tag);
      for (const [k, v] of Object.entries(attrs || {})) {
        if (k === "class") node.className = v; else if (k === "text") node.textContent = v;
        else node.setAttribute(k, v);
      }
      for (const c of children) node.append(c);
      return node;
    },
    // an SVG element with attributes
    svg(tag, attrs) {
      const node = document.createElementNS(SVG, tag);
      for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
      return node;
    },
    // a labelled range input; onInput(value) on every move; returns {row, input, set(v)};
    // format(value) -> text, if given, writes the readout instead of toFixed(digits)
    slider(label, {min, max, step, value, digits = 2, cls = "", format}, onInput) {
      const show = (v) => (format ? format(Number(v)) : Number(v).toFixed(digits));
      const input = lib.el("input", {type: "range", min, max, step, value, class: "yx-slider " + cls});
      const readout = lib.el("span", {class: "yx-readout", text: show(value)});
      const row = lib.el("label", {class: "yx-control"}, lib.el("span", {class: "yx-label", text: label}), input, readout);
      const sync = () => { readout.textContent = show(input.value); };
      input.addEventListener("input", () => { sync(); onInput(Number(input.value)); });
      return {row, input, set(v) { input.value = v; sync(); }};
    },
    // a labelled <select>; options: [[value, text], ...]
    select(label, options, value, onChange, cls = "") {
      const sel = lib.el("select", {class: "yx-select " + cls});
      for (const [v, t] of options) {
        const o = lib.el("option", {value: String(v), text: String(t)});
        if (String(v) === String(value)) o.selected = true;
        sel.append(o);
      }
      sel.addEventListener("change", () => onChange(sel.value));
      return {row: lib.el("label", {class: "yx-control"}, lib.el("span", {class: "yx-label", text: label}), sel), input: sel};
    },
    button(text, onClick, cls = "") {
      const b = lib.el("button", {type: "button", class: "yx-button " + cls, text});
      b.addEventListener("click", onClick);
      return b;
    },
    sigmoid(x) { return 1 / (1 + Math.exp(-x)); },
    // Python's f"{v:+.{digits}f}" (sign) or f"{v:{width}.{digits}f}": toFixed, a sign, left padding
    fixed(v, digits, {sign = false, width = 0} = {}) {
      const neg = v < 0 || Object.is(v, -0);
      const text = (neg ? "-" : sign ? "+" : "") + Math.abs(v).toFixed(digits);
      return text.padStart(width);
    },
    // an SVG rectangle from corners (x1, y1, x2, y2)
    rect([x1, y1, x2, y2], attrs) {
      return lib.svg("rect", {x: x1, y: y1, width: Math.max(0, x2 - x1), height: Math.max(0, y2 - y1), ...attrs});
    },
    // an <svg> showing a photo (data URL) in its own pixel coordinates, with a margin around it
    // (a fraction of its size, for boxes that leave it); returns the svg, draw into it
    photo(url, width, height, {margin = 0, maxWidth = 640} = {}) {
      const mx = margin * width, my = margin * height;
      const root = lib.svg("svg", {viewBox: `${-mx} ${-my} ${width + 2 * mx} ${height + 2 * my}`, class: "yx-figure",
                                   width: maxWidth, preserveAspectRatio: "xMidYMid meet"});
      if (margin > 0) root.append(lib.svg("rect", {x: -mx, y: -my, width: width + 2 * mx, height: height + 2 * my, fill: "#EEEEEE"}));
      root.append(lib.svg("image", {href: url, x: 0, y: 0, width, height, preserveAspectRatio: "none"}));
      return root;
    },
    // grid lines of rows x cols cells over a width x height picture
    grid(width, height, rows, cols, attrs) {
      const g = lib.svg("g", {stroke: "white", "stroke-opacity": 0.8, "stroke-width": 1, ...attrs});
      for (let k = 1; k < cols; k++) g.append(lib.svg("line", {x1: k * width / cols, x2: k * width / cols, y1: 0, y2: height}));
      for (let k = 1; k < rows; k++) g.append(lib.svg("line", {y1: k * height / rows, y2: k * height / rows, x1: 0, x2: width}));
      return g;
    },
    style: ".yolov2-explorer{font:13px/1.4 system-ui,sans-serif;margin:0.5em 0}" +
      ".yolov2-explorer .yx-control{display:inline-flex;align-items:center;gap:6px;margin:2px 12px 2px 0}" +
      ".yolov2-explorer .yx-label{min-width:3.5em}.yolov2-explorer .yx-readout{min-width:3.5em;font-variant-numeric:tabular-nums}" +
      ".yolov2-explorer .yx-slider{width:160px}.yolov2-explorer pre{font-size:12px;margin:4px 0}" +
      ".yolov2-explorer svg{max-width:100%;height:auto;display:block}",
  };
  window.YOLOv2Explorers = {
    lib,
    define(kind, build) { components[kind] = build; },
    mount(id) {
      const root = document.getElementById(id);
      if (!root || root.dataset.mounted) return;
      root.dataset.mounted = "1";
      if (!document.getElementById("yolov2-explorer-style")) {
        document.head.append(lib.el("style", {id: "yolov2-explorer-style", text: lib.style}));
      }
      const data = JSON.parse(document.getElementById(id + "-data").textContent);
      try {
        components[root.dataset.kind](root, data, lib);
        root.dataset.state = "ready";
      } catch (err) {
        root.dataset.state = "error";
        root.textContent = "This explorer could not start: " + err.message;
        throw err;
      }
    },
  };
})();
