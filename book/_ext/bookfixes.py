"""Small Sphinx fixes for this book.

sphinx-thebe registers its inline configuration script once per
`env-before-read-docs` event, which Jupyter Book fires more than once, so
each page declared `const THEBE_JS_URL` twice and the browser raised
"Identifier 'THEBE_JS_URL' has already been declared". Keep the first copy
of every script a page would load.
"""


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        key = (getattr(js, "filename", js) or "", repr(getattr(js, "attributes", None)))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique  # in place: myst-nb appends the widget state to this very list later


def setup(app):
    app.connect("html-page-context", _dedupe_scripts, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
