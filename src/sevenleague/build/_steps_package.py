"""The steps that make and ship the release: docs, the .deb, the signed apt repository."""

from __future__ import annotations

from pathlib import Path

from ..errors import LeagueError
from ._archive import open_archive
from ._context import BuildContext, StepFailed
from ._deb_files import DebSpec
from ._deb_package import build_deb, deb_spec_for_wheels
from ._environment import runtime_wheels
from ._versions import debian_version


def step_docs(ctx: BuildContext) -> str:
    """The service's own pages and an API reference from its code, as one HTML folder."""
    project = ctx.needs_project
    out = ctx.artifacts / "docs"
    python = str(ctx.venv / "bin" / "python")
    api = ctx.run([python, "-m", "pdoc", "--output-directory", str(out / "api"), project.module])
    api_index = f"api/{project.module}.html" if api == 0 and (out / "api").is_dir() else ""
    pages = ctx.run([python, "-m", "sevenleague.build.docs_html", str(ctx.checkout / "docs"), str(out),
                     project.name, api_index])
    if pages != 0:
        raise StepFailed("rendering docs/ as HTML failed (see the log)")
    if api != 0:
        raise StepFailed(f"pdoc could not document {project.module} (see the log)")
    count = sum(1 for _ in out.rglob("*.html"))
    ctx.record(docs={"index": str(out / "index.html"), "pages": count})
    return f"{count} HTML pages"


def deb_spec(ctx: BuildContext, wheels: list[Path]) -> DebSpec:
    """Name, version and maintainer from the project and the commit; the rest from the wheels."""
    project = ctx.needs_project
    commit = ctx.commit
    maintainer = f"{commit.get('author') or 'sevenleague'} <{commit.get('email') or 'root@localhost'}>"
    summary = project.description.splitlines()[0].rstrip(".")[:70] or f"The {project.name} service"
    return deb_spec_for_wheels(
        wheels, app_wheel=ctx.app_wheel, package=project.name,
        version=debian_version(project.version, ctx.build.id), app=project.app, summary=summary,
        maintainer=maintainer, service=ctx.build.service,
        changes=(f"Build {ctx.build.id} of {str(commit.get('sha', ''))[:12]}: {commit.get('subject', '')}",),
    )


def step_package(ctx: BuildContext) -> str:
    """The app's wheel and its runtime dependencies' wheels, packaged with dpkg-deb."""
    try:
        wheels = runtime_wheels(ctx.cache, ctx.shared_env, ctx.app_wheel, ctx.local_wheels,
                                ctx.work / "runtime-wheels", ctx.runner)
        ctx.deb = build_deb(deb_spec(ctx, wheels), wheels, ctx.artifacts)
    except LeagueError as error:
        raise StepFailed(str(error) + (f" ({error.hint})" if error.hint else "")) from None
    size = ctx.deb.stat().st_size
    ctx.record(deb={"path": str(ctx.deb), "name": ctx.deb.name, "size": size, "wheels": len(wheels)})
    return f"{ctx.deb.name}, {size / 1e6:.1f} MB, {len(wheels)} wheels"


def step_publish(ctx: BuildContext) -> str:
    """Into the signed apt repository, last: only a build that passed everything ships."""
    assert ctx.deb is not None, "package runs first"
    try:
        published = open_archive(ctx.paths, ctx.ecosystem).publish(ctx.deb)
    except LeagueError as error:
        raise StepFailed(str(error) + (f" ({error.hint})" if error.hint else "")) from None
    ctx.record(published={"package": published.name, "version": published.version,
                          "filename": published.filename, "sha256": published.sha256,
                          "apt_url": ctx.apt_url})
    return f"{published.name} {published.version} in {ctx.apt_url or ctx.paths.apt}"
