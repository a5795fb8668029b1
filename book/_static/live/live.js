/* The detector of "The detector in your browser", running in the reader's browser.
 *
 * ONNX Runtime Web (its WebAssembly backend, one thread) computes the network's raw head from
 * _static/live-data/<detector>.onnx, written at build time by yolov2_lib.onnx_export.browser_bundle.
 * Everything around the network is done here exactly as the library does it in Python:
 *   - the image is stretched to the input (data.transforms.resize: bilinear, half-pixel centres,
 *     no antialiasing) or letterboxed (decode.letterbox_params), as the detector was trained;
 *   - decode.postprocess: sigmoid offsets and exp sizes (chapter 5), objectness times the softmax
 *     of the classes, every (box, class) pair above the score threshold, class-wise greedy NMS
 *     (IoU strictly above the threshold suppresses), at most top_k boxes, boxes in image pixels.
 * Once it has run, #live-detector carries data-image (the image's name) and data-detections (JSON
 * rows x1, y1, x2, y2, score, class in the image's pixels), data-forward-ms and data-state
 * (loading, running, ready, error; no-webassembly; needs-server when the page was opened from disk).
 */
(function () {
  "use strict";

  const root = document.getElementById("live-detector");
  if (!root) return;
  const staticUrl = new URL(root.dataset.static || "../_static/", document.baseURI);
  const dataUrl = new URL("live-data/", staticUrl);
  const ortUrl = new URL("vendor/onnxruntime-web/", staticUrl);
  // the colours of `yolov2 detect` (cli._palette)
  const COLOURS = ["#e6194b", "#3cb44b", "#0082c8", "#f58230", "#911eb4", "#46f0f0", "#f032e6",
                   "#d2f53c", "#fabed4", "#008080"];

  const status = root.querySelector(".live-status") || root.appendChild(document.createElement("p"));
  status.classList.add("live-status");

  function setState(state, message) {
    root.dataset.state = state;
    status.textContent = message;
    status.hidden = !message;
  }

  if (typeof WebAssembly !== "object" || typeof WebAssembly.instantiate !== "function") {
    setState("no-webassembly",
      "This browser cannot run WebAssembly, so the detector cannot run in this page. " +
      "Any recent Firefox, Chrome, Edge or Safari can; or run the same detector in Python: " +
      "yolov2 detect bccd my_images/ --out detections/");
    root.classList.add("live-unavailable");
    return;
  }

  // Opened from disk (file://), a browser lets a page read no file beside it: no fetch of the
  // manifest or the network, no import of ONNX Runtime's module, and pictures taint the canvas.
  // Say in one line how to serve the book instead of failing on the first fetch.
  if (location.protocol === "file:") {
    const bookRoot = new URL("../", staticUrl);  // _static/ lies in the book's html folder
    const here = location.href.startsWith(bookRoot.href) ? location.pathname.slice(bookRoot.pathname.length)
                                                         : "book/10_in_your_browser.html";
    const address = "http://127.0.0.1:8000/" + here;
    const code = (text) => element("code", { text });
    status.replaceChildren(
      document.createTextNode("Opened from disk, your browser does not let this page load the detector's files: run "),
      code("make serve"), document.createTextNode(" in the book's folder (or "),
      code("python -m http.server -d _build/html 8000"), document.createTextNode(") and open "),
      element("a", { href: address, text: address }), document.createTextNode("."));
    status.hidden = false;
    root.dataset.state = "needs-server";
    root.classList.add("live-unavailable");
    return;
  }

  // ------------------------------------------------------------------ image to network input

  // Python's round(): halves to even (letterbox_resized_size uses it).
  function roundHalfEven(x) {
    const r = Math.round(x);
    return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  }

  // torch.nn.functional.interpolate(mode="bilinear", align_corners=False) of RGBA bytes, as
  // float RGB in [0, 1], written into `out` (3, outH, outW) at row offset `top`, column `left`.
  function resizeInto(rgba, w, h, out, size, outW, outH, left, top) {
    const sy = h / outH, sx = w / outW;
    const xs0 = new Int32Array(outW), xs1 = new Int32Array(outW), lx = new Float64Array(outW);
    for (let x = 0; x < outW; x++) {
      const src = Math.max((x + 0.5) * sx - 0.5, 0);
      const x0 = Math.floor(src);
      xs0[x] = x0; xs1[x] = x0 < w - 1 ? x0 + 1 : x0; lx[x] = src - x0;
    }
    const plane = size * size;
    for (let y = 0; y < outH; y++) {
      const src = Math.max((y + 0.5) * sy - 0.5, 0);
      const y0 = Math.floor(src), y1 = y0 < h - 1 ? y0 + 1 : y0, ly = src - y0;
      const r0 = y0 * w, r1 = y1 * w, row = (top + y) * size + left;
      for (let x = 0; x < outW; x++) {
        const a = (r0 + xs0[x]) * 4, b = (r0 + xs1[x]) * 4, c = (r1 + xs0[x]) * 4, d = (r1 + xs1[x]) * 4;
        const wx = lx[x];
        for (let k = 0; k < 3; k++) {
          const upper = rgba[a + k] + wx * (rgba[b + k] - rgba[a + k]);
          const lower = rgba[c + k] + wx * (rgba[d + k] - rgba[c + k]);
          out[k * plane + row + x] = (upper + ly * (lower - upper)) / 255;
        }
      }
    }
  }

  // The (1, 3, S, S) input and the geometry postprocess needs to undo it.
  function networkInput(rgba, w, h, size, letterbox) {
    const input = new Float32Array(3 * size * size);
    if (!letterbox) {
      resizeInto(rgba, w, h, input, size, size, size, 0, 0);
      return { input, placement: null };
    }
    const scale = Math.min(size / w, size / h);
    const newW = Math.min(Math.max(1, roundHalfEven(w * scale)), size);
    const newH = Math.min(Math.max(1, roundHalfEven(h * scale)), size);
    const padX = Math.floor((size - newW) / 2), padY = Math.floor((size - newH) / 2);
    input.fill(0.5);
    resizeInto(rgba, w, h, input, size, newW, newH, padX, padY);
    return { input, placement: { newW, newH, padX, padY } };
  }

  // ------------------------------------------------------------------ decode.postprocess

  const sigmoid = (x) => 1 / (1 + Math.exp(-x));

  function iou(p, q) {
    const iw = Math.max(Math.min(p[2], q[2]) - Math.max(p[0], q[0]), 0);
    const ih = Math.max(Math.min(p[3], q[3]) - Math.max(p[1], q[1]), 0);
    const inter = iw * ih;
    const area = (b) => Math.max(b[2] - b[0], 0) * Math.max(b[3] - b[1], 0);
    const union = area(p) + area(q) - inter;
    return union > 0 ? inter / union : 0;
  }

  // raw: Float32Array of the (1, A*(5+C), H, W) head. Returns rows [x1, y1, x2, y2, score, class]
  // in image pixels, by decreasing score, and the number of candidates that passed the threshold.
  function postprocess(raw, dims, m, conf, nmsThreshold, image, placement) {
    const [, , H, W] = dims;
    const A = m.anchors.length, C = m.num_classes, F = 5 + C, HW = H * W;
    const candidates = [];
    const logits = new Float64Array(C);
    for (let i = 0; i < H; i++) {
      for (let j = 0; j < W; j++) {
        for (let a = 0; a < A; a++) {
          const base = a * F * HW + i * W + j;  // channel a*(5+C) + e at cell (i, j)
          const bx = (sigmoid(raw[base]) + j) / W;
          const by = (sigmoid(raw[base + HW]) + i) / H;
          const bw = m.anchors[a][0] * Math.exp(raw[base + 2 * HW]) / W;
          const bh = m.anchors[a][1] * Math.exp(raw[base + 3 * HW]) / H;
          const objectness = sigmoid(raw[base + 4 * HW]);
          let top = -Infinity;
          for (let k = 0; k < C; k++) { logits[k] = raw[base + (5 + k) * HW]; top = Math.max(top, logits[k]); }
          let sum = 0;
          for (let k = 0; k < C; k++) { logits[k] = Math.exp(logits[k] - top); sum += logits[k]; }
          const box = [bx - bw / 2, by - bh / 2, bx + bw / 2, by + bh / 2];
          for (let k = 0; k < C; k++) {
            const score = objectness * (logits[k] / sum);
            if (score > conf) candidates.push({ box, score, cls: k, order: candidates.length });
          }
        }
      }
    }
    candidates.sort((p, q) => q.score - p.score || p.order - q.order);
    const kept = [];
    for (const c of candidates) {
      if (kept.length >= m.top_k) break;
      if (!kept.some((k) => k.cls === c.cls && iou(k.box, c.box) > nmsThreshold)) kept.push(c);
    }
    const { width: w, height: h } = image, S = m.input_size;
    const rows = kept.map((c) => {
      let b;
      if (placement) {
        const fx = placement.newW / w, fy = placement.newH / h;
        b = [(c.box[0] * S - placement.padX) / fx, (c.box[1] * S - placement.padY) / fy,
             (c.box[2] * S - placement.padX) / fx, (c.box[3] * S - placement.padY) / fy];
      } else {
        b = [c.box[0] * w, c.box[1] * h, c.box[2] * w, c.box[3] * h];
      }
      const lim = [w, h, w, h];
      b = b.map((v, k) => Math.min(Math.max(v, 0), lim[k]));
      return [...b, c.score, c.cls];
    });
    return { rows, candidates: candidates.length };
  }

  // ------------------------------------------------------------------ the page

  function element(tag, attrs, children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") el.textContent = v; else el.setAttribute(k, v);
    }
    for (const child of children || []) el.appendChild(child);
    return el;
  }

  function slider(label, cls, value) {
    const input = element("input", { type: "range", class: cls, min: "0.05", max: "0.95", step: "0.05" });
    input.value = String(value);
    const shown = element("output", { text: Number(value).toFixed(2) });
    input.addEventListener("input", () => { shown.textContent = Number(input.value).toFixed(2); });
    return { input, box: element("label", { class: "live-slider" }, [document.createTextNode(label + " "), input, shown]) };
  }

  function loadScript(url) {
    return new Promise((resolve, reject) => {
      const s = element("script", { src: url });
      s.onload = resolve;
      s.onerror = () => reject(new Error("could not load " + url));
      document.head.appendChild(s);
    });
  }

  async function loadImage(url) {
    const img = new Image();
    img.src = url;
    await img.decode();
    return img;
  }

  async function main() {
    setState("loading", "Loading the detector and ONNX Runtime Web...");
    const manifest = await (await fetch(new URL("detector.json", dataUrl))).json();
    await loadScript(new URL("ort.wasm.min.js", ortUrl).href);
    const ort = window.ort;
    ort.env.wasm.numThreads = 1;  // no worker threads: no cross-origin isolation needed
    ort.env.wasm.proxy = false;
    ort.env.wasm.wasmPaths = ortUrl.href;  // our own copy, never a CDN
    const session = await ort.InferenceSession.create(new URL(manifest.model, dataUrl).href,
      { executionProviders: ["wasm"], graphOptimizationLevel: "all" });

    // controls
    const picker = element("select", { class: "live-image", "aria-label": "image" });
    manifest.images.forEach((im, k) => picker.appendChild(element("option", { value: String(k), text: im.file })));
    const ownOption = element("option", { value: "own", text: "your own image..." });
    picker.appendChild(ownOption);
    const file = element("input", { type: "file", accept: "image/*", class: "live-file" });
    const score = slider("score threshold", "live-score", manifest.conf_threshold);
    const nms = slider("NMS IoU", "live-nms", manifest.nms_threshold);
    const canvas = element("canvas", { class: "live-canvas" });
    const stage = element("div", { class: "live-stage" }, [canvas,
      element("div", { class: "live-drop-hint", text: "drop an image here" })]);
    const counts = element("p", { class: "live-counts" });
    const timing = element("p", { class: "live-timing" });
    root.appendChild(element("div", { class: "live-controls" }, [
      element("label", {}, [document.createTextNode("image "), picker]),
      element("label", {}, [document.createTextNode("or open one "), file]),
      score.box, nms.box]));
    root.appendChild(stage);
    root.appendChild(counts);
    root.appendChild(timing);

    let current = null;
    let firstMs = null;
    const num = (n) => n.toLocaleString("en-US");

    function redraw() {
      if (!current) return;
      const conf = Number(score.input.value), iouThreshold = Number(nms.input.value);
      const { rows, candidates } = postprocess(current.raw, current.dims, manifest, conf, iouThreshold,
        current.image, current.placement);
      const { width: w, height: h } = current.image;
      canvas.width = w; canvas.height = h;
      const ctx = canvas.getContext("2d");
      ctx.drawImage(current.img, 0, 0);
      const line = Math.max(1, Math.round(Math.min(w, h) / 250));
      ctx.font = `${Math.max(10, Math.round(Math.min(w, h) / 40))}px sans-serif`;
      ctx.textBaseline = "top";
      for (const [x1, y1, x2, y2, s, c] of rows) {
        const colour = COLOURS[c % COLOURS.length];
        ctx.strokeStyle = colour; ctx.lineWidth = line;
        ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
        const label = `${manifest.class_names[c]} ${s.toFixed(2)}`;
        const tw = ctx.measureText(label).width + 4, th = parseInt(ctx.font, 10) + 2;
        const ty = y1 - th >= 0 ? y1 - th : y1;
        ctx.fillStyle = colour; ctx.fillRect(x1, ty, tw, th);
        ctx.fillStyle = "#fff"; ctx.fillText(label, x1 + 2, ty + 1);
      }
      const [, channels, H, W] = current.dims;
      const A = manifest.anchors.length, C = manifest.num_classes;
      const perClass = manifest.class_names.map((n, k) => `${n} ${rows.filter((r) => r[5] === k).length}`);
      const annotated = current.annotated
        ? " (annotated in the dataset: " + manifest.class_names.map((n) => `${n} ${current.annotated[n]}`).join(", ") + ")"
        : "";
      counts.textContent =
        `Detected: ${perClass.join(", ")}${annotated}. The head holds ${channels} x ${H} x ${W} numbers: ` +
        `${num(H * W * A)} boxes (${H} x ${W} cells x ${A} anchors), ${num(H * W * A * C)} (box, class) pairs; ` +
        `${num(candidates)} score above ${conf.toFixed(2)}, ${rows.length} kept by NMS at IoU ` +
        `${iouThreshold.toFixed(2)}.`;
      root.dataset.detections = JSON.stringify(rows.map((r) =>
        [...r.slice(0, 4).map((v) => Math.round(v * 1000) / 1000), Math.round(r[4] * 1e6) / 1e6, r[5]]));
      root.dataset.image = current.name;
      root.dataset.score = conf.toFixed(2);
      root.dataset.nms = iouThreshold.toFixed(2);
    }

    async function run(name, url, annotated) {
      setState("running", `Running the network on ${name}...`);
      try {
        const img = await loadImage(url);
        const w = img.naturalWidth, h = img.naturalHeight;
        const scratch = element("canvas");
        scratch.width = w; scratch.height = h;
        const sctx = scratch.getContext("2d", { willReadFrequently: true });
        sctx.drawImage(img, 0, 0);
        const rgba = sctx.getImageData(0, 0, w, h).data;
        const S = manifest.input_size;
        const { input, placement } = networkInput(rgba, w, h, S, manifest.letterbox);
        const feeds = { images: new ort.Tensor("float32", input, [1, 3, S, S]) };
        let start = performance.now();
        let out = await session.run(feeds);
        let ms = performance.now() - start;
        if (firstMs === null) {  // the very first pass also sets the runtime up: time a second one
          firstMs = ms;
          start = performance.now();
          out = await session.run(feeds);
          ms = performance.now() - start;
        }
        current = { name, img, image: { width: w, height: h }, raw: out.raw.data, dims: out.raw.dims,
                    placement, annotated };
        root.dataset.forwardMs = ms.toFixed(1);
        timing.textContent = `One forward pass took ${ms.toFixed(0)} ms in this browser ` +
          `(input ${S} x ${S}, WebAssembly on one thread; the very first took ${firstMs.toFixed(0)} ms, ` +
          `as it also set the runtime up). The detector file is ${(manifest.model_bytes / 1e6).toFixed(1)} MB. ` +
          "Decoding, scores and NMS run in JavaScript when you move a slider, without running the network again.";
        redraw();
        setState("ready", "");
      } catch (err) {
        setState("error", `Could not run the detector on ${name}: ${err.message || err}`);
        console.error(err);
      }
    }

    function runShipped(k) {
      const im = manifest.images[k];
      return run(im.file, new URL(im.file, dataUrl).href, im.annotated);
    }

    function runFile(f) {
      if (!f) return;
      if (!f.type.startsWith("image/")) {
        status.textContent = `${f.name} is not an image file.`;
        status.hidden = false;
        return;
      }
      ownOption.textContent = `your own image: ${f.name}`;
      picker.value = "own";
      const url = URL.createObjectURL(f);
      run(f.name, url, null).finally(() => URL.revokeObjectURL(url));
    }

    score.input.addEventListener("input", redraw);
    nms.input.addEventListener("input", redraw);
    picker.addEventListener("change", () => {
      if (picker.value === "own") file.click(); else runShipped(Number(picker.value));
    });
    file.addEventListener("change", () => runFile(file.files[0]));
    stage.addEventListener("dragover", (e) => { e.preventDefault(); stage.classList.add("live-dragging"); });
    stage.addEventListener("dragleave", () => stage.classList.remove("live-dragging"));
    stage.addEventListener("drop", (e) => {
      e.preventDefault();
      stage.classList.remove("live-dragging");
      runFile(e.dataTransfer.files[0]);
    });

    await runShipped(0);
  }

  main().catch((err) => {
    if (root.dataset.state !== "error") setState("error", `The detector could not start: ${err.message || err}`);
    console.error(err);
  });
})();
