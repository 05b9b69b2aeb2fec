"""Build an app's .deb from its wheel and every dependency wheel.

What the package needs from the system is read from the wheels themselves: their tags
say which CPython they were built for and which machine and glibc their binaries need,
their metadata says the lowest Python they support and their license. A wheel set that
cannot be installed together on one Debian Python is refused here, at build time,
rather than by pip inside postinst on a production host.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

from ..errors import LeagueError, UsageError
from ._deb_files import DebSpec, render_control, render_md5sums, render_tree

# --- wheel tags (PEP 425, PEP 600) ------------------------------------------------------------

MACHINE_TO_DEB_ARCH = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "i686": "i386",
    "armv7l": "armhf",
    "ppc64le": "ppc64el",
    "s390x": "s390x",
    "riscv64": "riscv64",
}
_LEGACY_MANYLINUX_GLIBC = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
_PLATFORM = re.compile(r"(?:manylinux_(\d+)_(\d+)|(manylinux1|manylinux2010|manylinux2014)|linux)_(\w+)")
_PYTHON_TAG = re.compile(r"(py|cp)(\d)(\d*)")
_REQUIRES_AT_LEAST = re.compile(r">=\s*(\d+)\.(\d+)")

Version = tuple[int, int]


@dataclass(frozen=True)
class WheelTags:
    distribution: str
    version: str
    pythons: tuple[str, ...]
    abis: tuple[str, ...]
    platforms: tuple[str, ...]

    @property
    def pure(self) -> bool:
        return self.platforms == ("any",)


@dataclass(frozen=True)
class WheelMetadata:
    name: str
    version: str
    requires_python: str
    license: str


def parse_wheel_name(file_name: str) -> WheelTags:
    """`name-version[-build]-python-abi-platform.whl`, each tag possibly a '.'-joined set."""
    parts = file_name.removesuffix(".whl").split("-")
    if not file_name.endswith(".whl") or len(parts) not in (5, 6):
        raise UsageError(f"{file_name!r} is not a wheel file name",
                         hint="expected name-version-python-abi-platform.whl (PEP 427)")
    python, abi, platform = parts[-3:]
    return WheelTags(parts[0], parts[1], tuple(python.split(".")), tuple(abi.split(".")),
                     tuple(platform.split(".")))


def _tag_python_range(python: str, abis: Sequence[str]) -> tuple[Version | None, Version | None] | None:
    """The Pythons one python tag admits, as [lower, upper); None if it admits no Python 3."""
    match = _PYTHON_TAG.fullmatch(python)
    if match is None or match[2] != "3":
        return None
    if not match[3]:
        return (None, None)
    minor = (3, int(match[3]))
    if match[1] == "py" or "abi3" in abis:
        return (minor, None)
    return (minor, (3, minor[1] + 1))


def wheel_python_range(tags: WheelTags) -> tuple[Version | None, Version | None]:
    """The widest range any of the wheel's python tags admits; a UsageError if none is CPython 3."""
    ranges = [r for r in (_tag_python_range(p, tags.abis) for p in tags.pythons) if r is not None]
    if not ranges:
        raise UsageError(f"{tags.distribution} {tags.version} is not built for CPython 3 "
                         f"(tags {'.'.join(tags.pythons)})",
                         hint="build the wheel with the python3 of the target Debian release")
    lowers = [low for low, _ in ranges]
    uppers = [high for _, high in ranges]
    lower = None if None in lowers else min(low for low in lowers if low is not None)
    upper = None if None in uppers else max(high for high in uppers if high is not None)
    return (lower, upper)


def requires_python_floor(requires_python: str) -> Version | None:
    """The lowest X.Y a Requires-Python admits, from its '>=' clauses; other clauses are pip's."""
    floors = [(int(major), int(minor)) for major, minor in _REQUIRES_AT_LEAST.findall(requires_python)]
    return max(floors) if floors else None


def python_depends(wheels: Iterable[str], requires_python: Iterable[str] = ()) -> tuple[str, ...]:
    """The python3 range every wheel runs on: cp311 binary wheels give >= 3.11, << 3.12."""
    lower: Version | None = None
    upper: Version | None = None
    narrowest: dict[str, str] = {}
    for name in wheels:
        low, high = wheel_python_range(parse_wheel_name(name))
        if low is not None and (lower is None or low > lower):
            lower, narrowest["lower"] = low, name
        if high is not None and (upper is None or high < upper):
            upper, narrowest["upper"] = high, name
    for floor in filter(None, map(requires_python_floor, requires_python)):
        if lower is None or floor > lower:
            lower = floor
    if lower is not None and upper is not None and lower >= upper:
        raise UsageError(
            f"no Python runs every wheel: {narrowest.get('lower', 'Requires-Python')} needs "
            f">= {lower[0]}.{lower[1]}, {narrowest['upper']} needs < {upper[0]}.{upper[1]}",
            hint="build every binary wheel with the same python3, the target release's")
    depends = []
    if lower is not None:
        depends.append(f"python3 (>= {lower[0]}.{lower[1]})")
    if upper is not None:
        depends.append(f"python3 (<< {upper[0]}.{upper[1]})")
    return tuple(depends)


def _platform_needs(platform: str, wheel: str) -> tuple[str, Version | None]:
    """(dpkg architecture, glibc version or None) of one Linux platform tag."""
    match = _PLATFORM.fullmatch(platform)
    if match is None:
        raise UsageError(f"{wheel} is built for {platform!r}, not for glibc Linux",
                         hint="Debian needs manylinux or linux wheels (musllinux is for Alpine)")
    machine = match[4]
    if machine not in MACHINE_TO_DEB_ARCH:
        raise UsageError(f"{wheel}: no Debian architecture for machine {machine!r}",
                         hint=f"known machines: {', '.join(MACHINE_TO_DEB_ARCH)}")
    glibc = ((int(match[1]), int(match[2])) if match[1]
             else _LEGACY_MANYLINUX_GLIBC.get(match[3]) if match[3] else None)
    return MACHINE_TO_DEB_ARCH[machine], glibc


def package_architecture(wheels: Iterable[str]) -> str:
    """`all` if every wheel is pure Python, else the one dpkg architecture their binaries need."""
    arches: dict[str, str] = {}
    for name in wheels:
        tags = parse_wheel_name(name)
        if tags.pure:
            continue
        for platform in tags.platforms:
            arches.setdefault(_platform_needs(platform, name)[0], name)
    if len(arches) > 1:
        found = ", ".join(f"{arch} ({wheel})" for arch, wheel in sorted(arches.items()))
        raise UsageError(f"the wheels are built for different machines: {found}",
                         hint="build every wheel on (or for) the target architecture")
    return next(iter(arches), "all")


def libc_depends(wheels: Iterable[str]) -> tuple[str, ...]:
    """The glibc the manylinux wheels promise to need at most: each wheel runs with its lowest tag."""
    needed: Version | None = None
    for name in wheels:
        tags = parse_wheel_name(name)
        if tags.pure:
            continue
        versions = [glibc for _, glibc in (_platform_needs(p, name) for p in tags.platforms)
                    if glibc is not None]
        if versions and (needed is None or min(versions) > needed):
            needed = min(versions)
    return (f"libc6 (>= {needed[0]}.{needed[1]})",) if needed else ()


def wheel_depends(wheels: Sequence[str], requires_python: Iterable[str] = ()) -> tuple[str, tuple[str, ...]]:
    """(Architecture, Depends) a package of these wheels needs; see the three functions above."""
    return package_architecture(wheels), (*python_depends(wheels, requires_python),
                                          *libc_depends(wheels))


# --- reading wheels ---------------------------------------------------------------------------


def _license_of(metadata: Any) -> str:
    expression = metadata.get("License-Expression")
    if expression:
        return str(expression).strip()
    declared = str(metadata.get("License") or "").strip()
    if declared and "\n" not in declared and len(declared) <= 60:
        return declared
    classifiers = [str(c).rsplit("::", 1)[-1].strip() for c in metadata.get_all("Classifier") or []
                   if str(c).startswith("License ::")]
    if classifiers:
        return " or ".join(classifiers)
    return declared.splitlines()[0][:60] if declared else "unknown"


def read_wheel_metadata(path: Path) -> WheelMetadata:
    """Name, version, Requires-Python and license from the wheel's *.dist-info/METADATA."""
    try:
        with zipfile.ZipFile(path) as wheel:
            names = [n for n in wheel.namelist()
                     if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
            if not names:
                raise UsageError(f"{path.name} has no *.dist-info/METADATA",
                                 hint="rebuild it with `pip wheel`")
            text = wheel.read(names[0]).decode("utf-8", errors="replace")
    except (OSError, zipfile.BadZipFile) as error:
        raise UsageError(f"cannot read wheel {path}: {error}") from None
    metadata = HeaderParser().parsestr(text)
    return WheelMetadata(str(metadata.get("Name", "")), str(metadata.get("Version", "")),
                         str(metadata.get("Requires-Python", "") or ""), _license_of(metadata))


def installed_size_kib(files: Iterable[Path], wheels: Iterable[Path]) -> int:
    """What dpkg unpacks plus an estimate of the venv postinst builds, so apt's free-space check
    means something: every file pip unpacks and a .pyc about the size of each .py."""
    total = sum(-(-path.stat().st_size // 1024) for path in files)
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            total += sum(-(-info.file_size // 1024) * (2 if info.filename.endswith(".py") else 1)
                         for info in archive.infolist())
    return total


def deb_spec_for_wheels(wheels: Sequence[Path], *, app_wheel: Path, package: str, version: str,
                        app: str, summary: str, maintainer: str, **options: Any) -> DebSpec:
    """A DebSpec whose Architecture, Depends and licenses come from the wheels themselves.

    `options` are DebSpec's optional fields (description, service, listen, ...).
    """
    metadata = [read_wheel_metadata(path) for path in wheels]
    names = [path.name for path in wheels]
    architecture, depends = wheel_depends(names, [m.requires_python for m in metadata])
    return DebSpec(
        package=package, version=version, app=app, summary=summary, maintainer=maintainer,
        app_wheel=app_wheel.name, wheels=tuple(sorted(names)), architecture=architecture,
        depends=depends, licenses=tuple(zip(names, (m.license for m in metadata), strict=True)),
        **options,
    )


# --- building ---------------------------------------------------------------------------------


def _wheels_by_name(spec: DebSpec, wheels: Sequence[Path]) -> dict[str, Path]:
    by_name = {path.name: path for path in wheels}
    missing = sorted(set(spec.wheels) - set(by_name))
    extra = sorted(set(by_name) - set(spec.wheels))
    if missing or extra or len(by_name) != len(wheels):
        raise UsageError(f"the wheels passed differ from the spec's: missing {missing}, not in spec "
                         f"{extra}", hint="pass exactly the wheels the spec lists, each once")
    absent = [str(path) for path in wheels if not path.is_file()]
    if absent:
        raise UsageError(f"wheel files not found: {', '.join(absent)}")
    return by_name


def _stage(spec: DebSpec, wheels: dict[str, Path], root: Path) -> None:
    for item in render_tree(spec):
        path = root / item.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(item.content)
        path.chmod(item.mode)
    wheel_dir = root / spec.wheel_dir.lstrip("/")
    wheel_dir.mkdir(parents=True, exist_ok=True)
    for name, source in sorted(wheels.items()):
        shutil.copyfile(source, wheel_dir / name)
        (wheel_dir / name).chmod(0o644)
    payload = [p for p in root.rglob("*") if p.is_file() and p.parts[len(root.parts)] != "DEBIAN"]
    conffiles = {spec.default_path}
    digests = {str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()  # noqa: S324
               for p in payload if "/" + str(p.relative_to(root)) not in conffiles}
    (root / "DEBIAN" / "md5sums").write_text(render_md5sums(digests))
    size = installed_size_kib(payload, (wheel_dir / name for name in wheels))
    (root / "DEBIAN" / "control").write_text(render_control(spec, size))
    epoch = spec.built_at.timestamp()
    for path in [root, *root.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
        os.utime(path, (epoch, epoch), follow_symlinks=False)


def dpkg_deb_argv(root: Path, output: Path) -> list[str]:
    """Owned by root whoever builds. gzip, not xz: the payload is wheels, already compressed,
    and xz takes 30 times longer to save 0.01 %."""
    return ["dpkg-deb", "--root-owner-group", "-Zgzip", "-z9", "--build", str(root), str(output)]


def build_deb(spec: DebSpec, wheels: Sequence[Path], out_dir: Path) -> Path:
    """Stage the package in a temporary directory, build it with dpkg-deb, return its path."""
    if shutil.which("dpkg-deb") is None:
        raise UsageError("dpkg-deb is not installed", hint="apt-get install dpkg")
    by_name = _wheels_by_name(spec, wheels)
    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / spec.deb_name
    with tempfile.TemporaryDirectory(prefix=f"deb-{spec.package}-") as tmp:
        root = Path(tmp) / "root"
        root.mkdir(mode=0o755)
        _stage(spec, by_name, root)
        env = {**os.environ, "SOURCE_DATE_EPOCH": str(int(spec.built_at.timestamp()))}
        done = subprocess.run(dpkg_deb_argv(root, output), capture_output=True, text=True, env=env,
                              check=False)
    if done.returncode != 0:
        raise LeagueError(f"dpkg-deb could not build {spec.deb_name}: "
                          f"{(done.stderr or done.stdout).strip()}")
    return output
