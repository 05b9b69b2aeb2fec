"""The Python environment a build's tests run in, cached by what goes into it.

A build needs the service's dependencies, its dev extras, its build backend and the
pipeline's tools (pytest, coverage, ruff, build, pdoc). Installing all that takes
most of a cold build, and the same set serves every build until a dependency changes,
so it lives in a shared venv keyed by a hash of the set and the Python. Each build
then gets its own small venv that sees the shared one through a `.pth` file and holds
only the service's freshly built wheel: tests run against the artifact that ships,
and no build changes what the next one sees.

Every wheel ever fetched is kept in a wheelhouse, so a warm build never reaches the
network, and a package can be assembled from exactly the wheels the tests used.
"""

from __future__ import annotations

import contextlib
import email.parser
import fcntl
import hashlib
import os
import shutil
import sys
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import LeagueError
from ._project import Project, requirement_name
from ._runner import CommandRunner

PYTHON_ENV = "LEAGUE_BUILD_PYTHON"
TOOLS = (
    "pytest>=8", "pytest-cov>=5", "pytest-timeout>=2", "ruff>=0.5", "build>=1.0",
    "pdoc>=14", "markdown>=3.5", "setuptools>=68", "wheel>=0.40",
)
_COMPLETE = ".complete"


class EnvironmentFailed(LeagueError):
    pass


def build_python() -> Path:
    """The target hosts' Python (Debian's /usr/bin/python3), so binary wheels match them."""
    configured = os.environ.get(PYTHON_ENV)
    if configured:
        return Path(configured)
    system = Path("/usr/bin/python3")
    return system if system.exists() else Path(sys.executable)


@dataclass(frozen=True)
class BuildCache:
    root: Path

    @property
    def wheelhouse(self) -> Path:
        return self.root / "wheels"

    @property
    def local(self) -> Path:
        """Wheels built from local sources (sevenleague itself), one folder per source hash."""
        return self.root / "local"

    @property
    def envs(self) -> Path:
        return self.root / "envs"

    @property
    def pip_cache(self) -> Path:
        return self.root / "pip"

    def pip_environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(PIP_CACHE_DIR=str(self.pip_cache), PIP_DISABLE_PIP_VERSION_CHECK="1",
                   PIP_NO_INPUT="1", PYTHONDONTWRITEBYTECODE="1")
        return env


@contextlib.contextmanager
def cache_lock(cache: BuildCache) -> Iterator[None]:
    """One writer of the cache at a time: parallel builds, or eco-systems sharing the cache."""
    cache.root.mkdir(parents=True, exist_ok=True)
    with (cache.root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# --- sevenleague itself, for services that depend on it ------------------------------------


def sevenleague_source() -> Path:
    """The source tree of the running sevenleague: apps build against the same kit."""
    import sevenleague

    root = Path(sevenleague.__file__).resolve().parents[2]
    if not (root / "pyproject.toml").exists() or not (root / "src" / "sevenleague").is_dir():
        raise LeagueError("sevenleague's source tree is not beside the installed package",
                          hint="run the build service from a checkout (`make up`), where src/ exists")
    return root


def source_hash(root: Path) -> str:
    digest = hashlib.sha256()
    files = [root / "pyproject.toml", *sorted((root / "src" / "sevenleague").rglob("*"))]
    for path in files:
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def sevenleague_wheel(cache: BuildCache, runner: CommandRunner) -> Path:
    """A wheel of the running sevenleague, built once per version of its source."""
    root = sevenleague_source()
    directory = cache.local / f"sevenleague-{source_hash(root)}"
    found = sorted(directory.glob("sevenleague-*.whl"))
    if found:
        return found[0]
    scratch = directory.with_name(directory.name + ".partial")
    shutil.rmtree(scratch, ignore_errors=True)
    source = scratch / "source"  # a copy: building writes egg-info and build/ beside the sources
    shutil.copytree(root / "src" / "sevenleague", source / "src" / "sevenleague",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(root / name, source / name)
    code = runner.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                       "--find-links", str(cache.wheelhouse), "--wheel-dir", str(scratch), str(source)],
                      cwd=scratch, env=cache.pip_environment())
    shutil.rmtree(source, ignore_errors=True)
    if code != 0:
        raise EnvironmentFailed("building the sevenleague wheel failed (see the build log)")
    shutil.rmtree(directory, ignore_errors=True)
    scratch.rename(directory)
    return sorted(directory.glob("sevenleague-*.whl"))[0]


# --- the shared environment -------------------------------------------------------------------


def wheel_requirements(wheel: Path) -> list[str]:
    """A wheel's own runtime requirements (Requires-Dist without extras), from its METADATA."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.parser.Parser().parsestr(archive.read(name).decode())
    return [r for r in metadata.get_all("Requires-Dist") or [] if "extra ==" not in r]


def requirements(project: Project, local_wheels: Sequence[Path]) -> list[str]:
    """Everything the tests and tools need, except the local wheels themselves.

    A local wheel (sevenleague) is replaced by its own requirements: the shared
    environment then survives a change of its source, and each build installs the
    current wheel into its own venv.
    """
    local = {requirement_name(w.name.split("-")[0]) for w in local_wheels}
    wanted = [*project.dependencies, *project.dev_dependencies, *project.build_requires, *TOOLS]
    for wheel in local_wheels:
        wanted += wheel_requirements(wheel)
    return sorted({r for r in wanted if requirement_name(r) not in local})


def environment_key(python: Path, reqs: Sequence[str]) -> str:
    real = python.resolve()
    stat = real.stat()
    digest = hashlib.sha256(f"{real}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())  # an upgrade is a new key
    for requirement in reqs:
        digest.update(requirement.encode() + b"\n")
    return digest.hexdigest()[:16]


def site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python3*/site-packages"))
    if not found:
        raise EnvironmentFailed(f"{venv} has no site-packages")
    return found[0]


def shared_environment(cache: BuildCache, project: Project, local_wheels: Sequence[Path],
                       runner: CommandRunner, python: Path) -> tuple[Path, bool]:
    """The venv with every dependency and tool; returns it and whether it was reused."""
    reqs = requirements(project, local_wheels)
    venv = cache.envs / environment_key(python, reqs)
    if (venv / _COMPLETE).exists():
        runner.say(f"reusing the environment {venv.name} ({len(reqs)} requirements)")
        return venv, True
    shutil.rmtree(venv, ignore_errors=True)
    env = cache.pip_environment()
    cache.wheelhouse.mkdir(parents=True, exist_ok=True)
    links = ["--find-links", str(cache.wheelhouse)]
    if runner.run([str(python), "-m", "venv", str(venv)], cwd=cache.root, env=env) != 0:
        raise EnvironmentFailed(f"{python} -m venv failed (is python3-venv installed?)")
    pip = [str(venv / "bin" / "python"), "-m", "pip"]
    install = [*pip, "install", "--quiet", "--no-index", *links, *reqs]
    if runner.run(install, cwd=cache.root, env=env) != 0:
        runner.say("not every wheel is in the wheelhouse yet: fetching from the package index")
        fetched = runner.run([*pip, "wheel", "--quiet", *links, "--wheel-dir", str(cache.wheelhouse), *reqs],
                             cwd=cache.root, env=env)
        if fetched != 0:
            raise EnvironmentFailed("resolving the dependencies failed (see the build log)")
        for wheel in cache.wheelhouse.glob("sevenleague-*.whl"):
            wheel.unlink()  # always taken from local sources, never a stale copy
        if runner.run(install, cwd=cache.root, env=env) != 0:
            raise EnvironmentFailed("installing the dependencies failed (see the build log)")
    (venv / _COMPLETE).write_text("\n".join(reqs) + "\n")
    return venv, False


def build_venv(path: Path, shared: Path, runner: CommandRunner, python: Path) -> Path:
    """A venv of the build's own that sees the shared one's packages behind its own."""
    if runner.run([str(python), "-m", "venv", "--without-pip", str(path)], cwd=path.parent) != 0:
        raise EnvironmentFailed(f"{python} -m venv failed for {path}")
    shared_site = site_packages(shared)
    (site_packages(path) / "_league_shared_env.pth").write_text(
        f"import site; site.addsitedir({str(shared_site)!r})\n")
    return path


def runtime_wheels(cache: BuildCache, shared: Path, app_wheel: Path, local_wheels: Sequence[Path],
                   out: Path, runner: CommandRunner) -> list[Path]:
    """The app's wheel and exactly its runtime dependencies, from the wheelhouse, offline."""
    out.mkdir(parents=True, exist_ok=True)
    argv = [str(shared / "bin" / "python"), "-m", "pip", "wheel", "--quiet", "--no-index",
            "--find-links", str(cache.wheelhouse), "--wheel-dir", str(out), str(app_wheel),
            *(str(w) for w in local_wheels)]
    if runner.run(argv, cwd=out, env=cache.pip_environment()) != 0:
        raise EnvironmentFailed("collecting the runtime wheels failed (see the build log)")
    return sorted(out.glob("*.whl"))

