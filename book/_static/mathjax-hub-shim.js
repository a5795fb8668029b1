// The widget manager (@jupyter-widgets/html-manager 1.0.15) typesets widget
// labels with MathJax 2's `MathJax.Hub.Queue`; the book loads MathJax 3, which
// has no Hub, so every labelled widget logged a TypeError. Map the one call it
// makes onto MathJax 3's typesetPromise.
document.addEventListener("DOMContentLoaded", () => {
  if (window.MathJax && !window.MathJax.Hub) {
    window.MathJax.Hub = {
      Queue: (job) => {
        const el = Array.isArray(job) ? job[2] : undefined;
        if (el && window.MathJax.typesetPromise) window.MathJax.typesetPromise([el]).catch(() => {});
      },
    };
  }
});
