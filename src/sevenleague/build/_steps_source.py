"""The first steps: the exact commit, the environment its tests need, and its wheel."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

from ..errors import LeagueError
from ._context import BuildContext, StepFailed
from ._environment import EnvironmentFailed, build_venv, cache_lock, sevenleague_wheel, shared_environment
from ._project import read_project, requirement_name

# --- source -------------------------------------------------------------------------------------


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "--git-dir", str(repo), *args], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise StepFailed(f"git {' '.join(args)} failed in {repo}: {done.stderr.strip()}")
    return done.stdout


def step_checkout(ctx: BuildContext) -> str:
    """The commit's tree exactly, in an empty directory: nothing from an earlier build."""
    repo = Path(ctx.build.repo)
    if not repo.is_dir():
        raise StepFailed(f"repository {repo} does not exist")
    log_format = "--format=%H%x00%an%x00%ae%x00%aI%x00%s"
    fields = _git(repo, "log", "-1", log_format, ctx.build.commit).strip()
    sha, author, email, date, subject = fields.split("\0")
    ctx.commit = {"sha": sha, "author": author, "email": email, "date": date, "subject": subject}
    ctx.record(commit_info=ctx.commit)
    archive = ctx.work / "source.tar"
    _git(repo, "archive", "--format=tar", "-o", str(archive), sha)
    ctx.checkout.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(ctx.checkout, filter="data")
    archive.unlink()
    try:
        ctx.project = read_project(ctx.checkout, app=ctx.settings.app)
    except LeagueError as error:
        raise StepFailed(str(error) + (f" ({error.hint})" if error.hint else "")) from None
    ctx.record(version=ctx.project.version, package=ctx.project.name)
    return f"{sha[:12]} by {author}: {subject}"


def step_environment(ctx: BuildContext) -> str:
    """Dependencies and tools from the cache when nothing changed; the network only when needed."""
    project = ctx.needs_project
    try:
        with cache_lock(ctx.cache):
            if "sevenleague" in {requirement_name(r) for r in project.dependencies}:
                ctx.local_wheels = [sevenleague_wheel(ctx.cache, ctx.runner)]
            ctx.shared_env, reused = shared_environment(ctx.cache, project, ctx.local_wheels, ctx.runner,
                                                        ctx.python)
        ctx.venv = build_venv(ctx.work / "venv", ctx.shared_env, ctx.runner, ctx.python)
    except EnvironmentFailed as error:
        raise StepFailed(str(error)) from None
    ctx.record(environment={"key": ctx.shared_env.name, "reused": reused, "python": str(ctx.python)})
    return f"environment {ctx.shared_env.name} ({'reused' if reused else 'created'})"


def step_wheel(ctx: BuildContext) -> str:
    """Build the wheel first: the tests then run against the artifact that ships."""
    project = ctx.needs_project
    dist = ctx.artifacts / "dist"
    code = ctx.run([str(ctx.shared_env / "bin" / "python"), "-m", "build", "--wheel", "--no-isolation",
                    "--outdir", str(dist), str(ctx.checkout)])
    wheels = sorted(dist.glob(f"{project.distribution}-*.whl"))
    if code != 0 or not wheels:
        raise StepFailed("building the wheel failed (python -m build; see the log)")
    ctx.app_wheel = wheels[-1]
    install = ctx.run([str(ctx.shared_env / "bin" / "python"), "-m", "pip", "--python",
                       str(ctx.venv / "bin" / "python"), "install", "--quiet", "--no-deps", "--no-index",
                       str(ctx.app_wheel), *(str(w) for w in ctx.local_wheels)],
                      env=ctx.cache.pip_environment())
    if install != 0:
        raise StepFailed(f"installing {ctx.app_wheel.name} into the test environment failed")
    return ctx.app_wheel.name
