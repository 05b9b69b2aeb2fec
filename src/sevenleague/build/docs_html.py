"""Render a service's docs/ (Markdown) as HTML pages, run inside the build's own venv.

It runs there, not in the build service, because that venv has the Markdown library
and the service's code; the build service only starts it and keeps what it writes.
Usage: python -m sevenleague.build.docs_html DOCS_DIR OUT_DIR TITLE [API_INDEX]
"""

from __future__ import annotations

import html
import sys
from pathlib import Path

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:50rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}
pre{{background:#f4f4f4;padding:.5rem;overflow-x:auto}}code{{background:#f4f4f4}}</style>
</head><body><nav><a href="index.html">{service}</a></nav>
{body}
</body></html>
"""


def render_markdown(text: str) -> str:
    import markdown  # type: ignore[import-untyped,unused-ignore]

    rendered: str = markdown.markdown(text, extensions=["fenced_code", "tables", "toc"])
    return rendered


def page(title: str, service: str, body: str) -> str:
    return PAGE.format(title=html.escape(title), service=html.escape(service), body=body)


def render_docs(docs: Path, out: Path, service: str, api_index: str = "") -> list[Path]:
    """One page per Markdown file, plus an index linking them and the API reference."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    sources = sorted(docs.rglob("*.md")) if docs.is_dir() else []
    for source in sources:
        target = out / source.relative_to(docs).with_suffix(".html")
        if target.name == "index.html":
            target = target.with_name("guide.html")
        target.parent.mkdir(parents=True, exist_ok=True)
        text = source.read_text()
        title = next((line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("#")),
                     source.stem)
        target.write_text(page(title, service, render_markdown(text)))
        written.append(target)
    links = [f'<li><a href="{p.relative_to(out)}">{html.escape(p.stem)}</a></li>' for p in written]
    if api_index:
        links.append(f'<li><a href="{html.escape(api_index)}">API reference</a></li>')
    index = out / "index.html"
    index.write_text(page(f"{service} documentation", service,
                          f"<h1>{html.escape(service)}</h1><ul>{''.join(links)}</ul>"))
    return [index, *written]


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    pages = render_docs(Path(argv[0]), Path(argv[1]), argv[2], argv[3] if len(argv) == 4 else "")
    print(f"{len(pages)} pages in {argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
