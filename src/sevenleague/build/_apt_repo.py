"""The eco-system's signed apt repository: a pool of .deb files and an index apt trusts.

Layout of `root` (everything a host needs, nothing else is served):

    league-archive-keyring.gpg / .asc      the public key(s) hosts put in `signed-by=`
    pool/main/<l>/<source>/<name>_<version>_<arch>.deb   every version ever published
    dists -> .dists-<n>                     symlink to the current index generation
    .dists-<n>/<suite>/InRelease, Release, Release.gpg
    .dists-<n>/<suite>/main/binary-<arch>/Packages, Packages.gz, by-hash/SHA256/<sha256>

Why this shape:
- A publish builds the whole index in a new `.dists-<n>` beside the current one and
  swaps the `dists` symlink with one rename: a reader sees the old index or the new one,
  never half of each, and a publish that fails anywhere leaves the old one served.
- apt fetches InRelease and then the Packages files in separate requests; a publish in
  between would hand it a Packages that no longer matches. `Acquire-By-Hash: yes` makes
  apt fetch Packages by its hash, and the recent `by-hash/` files are carried from
  generation to generation, so those requests still find what the older InRelease named.
- Architecture `all` packages are listed in every `binary-<arch>/Packages` and `all` is
  not named in `Architectures`: the convention every apt version reads without a
  `binary-all` index or the newer `No-Support-for-Architecture-all` field.
- A version, once published, is immutable: apt caches .deb files by name and version,
  so a host that installed the first build would never fetch a second one under the
  same version. Republishing different content is refused; identical content is a no-op.
  Old versions stay in the pool and the index so deployments can roll back to them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import gzip
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UsageError
from ._deb_files import ARCHITECTURE, PACKAGE_NAME
from ._gpg import (
    ARMORED_KEYRING_NAME,
    KEYRING_NAME,
    ArchiveError,
    SigningKey,
    export_keyring,
    sign_release,
)

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_ARCHITECTURES = ("amd64", "arm64")
HOST_KEYRING_PATH = f"/etc/apt/keyrings/{KEYRING_NAME}"
GENERATION_PREFIX = ".dists-"
KEEP_BY_HASH = 16  # by-hash files kept per index directory: Packages + Packages.gz of 8 generations
TOOL_TIMEOUT = 300.0
PUBLIC_TOP_LEVEL = frozenset({"dists", "pool", KEYRING_NAME, ARMORED_KEYRING_NAME})
IMMUTABLE = "public, max-age=31536000, immutable"

_VERSION = re.compile(r"(?:[0-9]+:)?[0-9A-Za-z][0-9A-Za-z.+~-]*")
_ARCHIVE_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_CONF_VALUE = re.compile(r'^[^"\n\\]*$')
_GENERATION = re.compile(rf"^{re.escape(GENERATION_PREFIX)}([0-9]+)$")


@dataclass(frozen=True)
class DebControl:
    name: str
    version: str
    architecture: str
    source: str


@dataclass(frozen=True)
class PublishedPackage:
    name: str
    version: str
    architecture: str
    filename: str  # relative to the repository root, as in the Packages index
    sha256: str
    size: int


@dataclass(frozen=True)
class ReleaseFields:
    origin: str
    label: str
    suite: str
    codename: str
    component: str
    architectures: tuple[str, ...]
    description: str
    valid_for: timedelta | None = None


# --- pure: Debian versions -------------------------------------------------------------


def _order(char: str) -> int:
    """dpkg's character weight: `~` sorts before everything, even the end of the string."""
    if char == "" or char.isdigit():
        return 0
    if char.isalpha():
        return ord(char)
    if char == "~":
        return -1
    return ord(char) + 256


def _compare_part(a: str, b: str) -> int:
    """dpkg's verrevcmp: alternating runs of non-digits (by weight) and digits (by value)."""
    i = j = 0
    while i < len(a) or j < len(b):
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac, bc = _order(a[i] if i < len(a) else ""), _order(b[j] if j < len(b) else "")
            if ac != bc:
                return ac - bc
            i, j = i + 1, j + 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        first_diff = 0
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            first_diff = first_diff or ord(a[i]) - ord(b[j])
            i, j = i + 1, j + 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


def _split_version(version: str) -> tuple[int, str, str]:
    epoch, _, rest = version.rpartition(":") if ":" in version else ("0", "", version)
    upstream, dash, revision = rest.rpartition("-")
    if not dash:
        upstream, revision = rest, ""
    return int(epoch or 0), upstream, revision


def compare_versions(a: str, b: str) -> int:
    """<0, 0 or >0 as Debian orders versions (`dpkg --compare-versions`): 1.10 > 1.9, 1.0~rc1 < 1.0."""
    epoch_a, upstream_a, revision_a = _split_version(a)
    epoch_b, upstream_b, revision_b = _split_version(b)
    if epoch_a != epoch_b:
        return epoch_a - epoch_b
    return _compare_part(upstream_a, upstream_b) or _compare_part(revision_a, revision_b)


def sort_packages(packages: Iterable[PublishedPackage]) -> list[PublishedPackage]:
    """By name, then oldest version first, then architecture."""

    def compare(x: PublishedPackage, y: PublishedPackage) -> int:
        if x.name != y.name:
            return -1 if x.name < y.name else 1
        by_version = compare_versions(x.version, y.version)
        if by_version:
            return by_version
        return (x.architecture > y.architecture) - (x.architecture < y.architecture)

    return sorted(packages, key=functools.cmp_to_key(compare))


# --- pure: control data and the index --------------------------------------------------


def parse_deb822(text: str) -> list[dict[str, str]]:
    """Stanzas of a control-format file; continuation lines are joined with newlines."""
    stanzas: list[dict[str, str]] = []
    current: dict[str, str] = {}
    field = ""
    for line in text.splitlines():
        if not line.strip():
            if current:
                stanzas.append(current)
            current, field = {}, ""
        elif line[0] in " \t" and field:
            current[field] += "\n" + line[1:]
        elif ":" in line:
            field, _, value = line.partition(":")
            current[field] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def control_from_fields(fields: dict[str, str], origin: str) -> DebControl:
    """The identity of a .deb, checked so that it can name a file in the pool safely."""
    name = fields.get("Package", "")
    version = fields.get("Version", "")
    architecture = fields.get("Architecture", "")
    source = (fields.get("Source") or name).split(" ", 1)[0]
    for field, value, pattern in (("Package", name, PACKAGE_NAME), ("Version", version, _VERSION),
                                  ("Architecture", architecture, ARCHITECTURE),
                                  ("Source", source, PACKAGE_NAME)):
        if not pattern.fullmatch(value):
            raise UsageError(f"{origin}: {field} {value!r} is not a valid Debian {field.lower()}",
                             hint="fix debian/control (see Debian Policy 5.6) and build the package again")
    return DebControl(name=name, version=version, architecture=architecture, source=source)


def pool_directory(component: str, source: str) -> str:
    """Debian's pool layout: pool/main/h/hello, but pool/main/libf/libfoo for the many lib* sources."""
    prefix = source[:4] if source.startswith("lib") and len(source) > 3 else source[0]
    return f"pool/{component}/{prefix}/{source}"


def pool_filename(component: str, control: DebControl) -> str:
    """Where a .deb lives, named as dpkg names it (without the epoch, which is not part of file names)."""
    version = control.version.split(":", 1)[1] if ":" in control.version else control.version
    return f"{pool_directory(component, control.source)}/{control.name}_{version}_{control.architecture}.deb"


def parse_packages_index(text: str) -> list[PublishedPackage]:
    packages = []
    for stanza in parse_deb822(text):
        packages.append(PublishedPackage(
            name=stanza["Package"], version=stanza["Version"], architecture=stanza["Architecture"],
            filename=stanza["Filename"], sha256=stanza["SHA256"], size=int(stanza["Size"]),
        ))
    return packages


def pool_architectures(filenames: Iterable[str]) -> set[str]:
    """The architectures of the .deb files in the pool, read from their canonical names."""
    found = set()
    for filename in filenames:
        stem = filename.rsplit("/", 1)[-1].removesuffix(".deb")
        found.add(stem.rsplit("_", 1)[-1])
    return found


def index_architectures(configured: Iterable[str], present: Iterable[str]) -> tuple[str, ...]:
    """Every configured architecture and every one in the pool; `all` goes into each, not its own."""
    return tuple(sorted((set(configured) | set(present)) - {"all"}))


def published_conflict(published: Iterable[PublishedPackage],
                       candidate: PublishedPackage) -> PublishedPackage | None:
    """The already published identical package (a no-op), None when new; raises when apt would be fooled."""
    for package in published:
        same_version = (package.name, package.version, package.architecture) == (
            candidate.name, candidate.version, candidate.architecture)
        if same_version and package.sha256 == candidate.sha256:
            return package
        if same_version:
            raise ArchiveError(
                f"{candidate.name} {candidate.version} ({candidate.architecture}) is already published "
                f"with different content (published sha256 {package.sha256[:16]}, "
                f"this file {candidate.sha256[:16]}); apt caches packages by version, so hosts would "
                "never fetch this build",
                hint=f"give the build a new version (e.g. {candidate.version}+1) and publish that",
            )
        if package.filename == candidate.filename:
            raise ArchiveError(
                f"{candidate.name} {candidate.version} would overwrite {package.filename}, which the "
                f"index lists as version {package.version}",
                hint="versions differing only by epoch share a file name; drop the epoch or bump the version",
            )
    return None


def _conf_value(field: str, value: str) -> str:
    if not _CONF_VALUE.match(value):
        raise UsageError(f"apt repository {field} {value!r} contains a quote, backslash or line break",
                         hint="use plain words")
    return f'"{value}"'


def render_release_conf(fields: ReleaseFields) -> str:
    """apt-ftparchive's configuration for the Release file: its metadata and which hashes to list.

    SHA256 only: every supported apt verifies it, and one hash means one `by-hash/` tree.
    """
    entries = [
        ("Origin", fields.origin), ("Label", fields.label), ("Suite", fields.suite),
        ("Codename", fields.codename), ("Architectures", " ".join(fields.architectures)),
        ("Components", fields.component), ("Description", fields.description),
        ("Acquire-By-Hash", "yes"), ("MD5", "false"), ("SHA1", "false"), ("SHA512", "false"),
    ]
    if fields.valid_for is not None:
        entries.append(("ValidTime", str(int(fields.valid_for.total_seconds()))))
    body = "".join(f"  {name} {_conf_value(name, value)};\n" for name, value in entries)
    return "APT::FTPArchive::Release {\n" + body + "};\n"


def _repository_url(base_url: str) -> str:
    if not re.match(r"^https?://[^\s\[\]]+$", base_url):
        raise UsageError(f"repository URL {base_url!r} is not an http(s) URL",
                         hint="give the URL the repository root is served at, e.g. http://build:8000/apt/")
    return base_url.rstrip("/") + "/"


def render_sources_line(base_url: str, suite: str, component: str, keyring: str = HOST_KEYRING_PATH) -> str:
    """The one-line form for /etc/apt/sources.list.d/league.list."""
    return f"deb [signed-by={keyring}] {_repository_url(base_url)} {suite} {component}\n"


def render_sources_stanza(base_url: str, suite: str, component: str, signed_by: str) -> str:
    """The deb822 form for /etc/apt/sources.list.d/league.sources.

    `signed_by` is a keyring path, or an armored public key that apt (2.3 and later)
    reads inline, so one file carries both where the repository is and whom to trust.
    """
    if "\n" in signed_by.strip():
        lines = [line if line.strip() else "." for line in signed_by.strip().splitlines()]
        signed = "\n" + "\n".join(f" {line}" for line in lines)
    else:
        signed = f" {signed_by}"
    return (f"Types: deb\nURIs: {_repository_url(base_url)}\nSuites: {suite}\n"
            f"Components: {component}\nSigned-By:{signed}\n")


def packages_argv(cache: Path, architecture: str, component: str) -> list[str]:
    """apt-ftparchive listing `<arch>` and `all` packages of the pool, relative to the repository root.

    AlwaysStat makes the cache compare size and mtime, so a pool file replaced by hand
    is hashed again rather than listed with its old checksum.
    """
    return ["apt-ftparchive", "--db", str(cache), "-o", "APT::FTPArchive::AlwaysStat=true",
            "--arch", architecture, "packages", f"pool/{component}"]


def cache_control(route_path: str) -> str:
    """Pool files and by-hash files never change under their name; the rest must be revalidated."""
    if route_path.startswith("pool/") or "/by-hash/" in route_path:
        return IMMUTABLE
    return "no-cache"


def is_public(route_path: str) -> bool:
    """Only the index, the pool and the public keyring: nothing hidden, no lock file, no scratch."""
    parts = [part for part in route_path.split("/") if part]
    return bool(parts) and parts[0] in PUBLIC_TOP_LEVEL and not any(p.startswith(".") for p in parts)


# --- side effects: tools and files ----------------------------------------------------


def run_tool(argv: list[str], *, what: str, package: str, cwd: Path | None = None) -> bytes:
    if shutil.which(argv[0]) is None:
        raise ArchiveError(f"{argv[0]} is not installed", hint=f"apt-get install {package}")
    try:
        result = subprocess.run(argv, cwd=cwd, capture_output=True, timeout=TOOL_TIMEOUT, check=False,
                                env={**os.environ, "LC_ALL": "C"})
    except subprocess.TimeoutExpired:
        raise ArchiveError(f"{argv[0]} did not finish {what} within {TOOL_TIMEOUT:.0f}s") from None
    errors = [line for line in result.stderr.decode(errors="replace").splitlines() if line.startswith("E:")]
    if result.returncode != 0 or errors:
        detail = (errors or result.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        raise ArchiveError(f"{argv[0]} failed {what}: {detail}")
    return result.stdout


def read_deb_control(deb: Path) -> DebControl:
    if not deb.is_file():
        raise UsageError(f"{deb}: no such .deb file", hint="give the path of the package the build produced")
    try:
        fields = run_tool(["dpkg-deb", "--field", str(deb), "Package", "Version", "Architecture", "Source"],
                          what=f"reading {deb}", package="dpkg")
    except ArchiveError as error:
        raise UsageError(f"{deb} is not a .deb file dpkg-deb can read ({error.message})",
                         hint="build it with dpkg-deb --build") from None
    stanzas = parse_deb822(fields.decode(errors="replace"))
    return control_from_fields(stanzas[0] if stanzas else {}, str(deb))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_atomic(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        shutil.copyfile(source, tmp)
        with tmp.open("rb") as stream:
            os.fsync(stream.fileno())
        tmp.chmod(0o644)
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _write_index_file(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    path.chmod(0o644)
    return path


def _fill_by_hash(by_hash: Path, written: list[Path], previous: Path | None) -> None:
    """This generation's index files under their SHA256, plus the recent ones older InRelease files name."""
    by_hash.mkdir(parents=True)
    if previous is not None and previous.is_dir():
        for old in previous.iterdir():
            _link_or_copy(old, by_hash / old.name)
    for path in written:
        target = by_hash / sha256_file(path)
        target.unlink(missing_ok=True)
        _link_or_copy(path, target)
    current = {sha256_file(path) for path in written}
    entries = sorted(by_hash.iterdir(), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    kept = 0
    for entry in entries:
        if entry.name in current:
            continue
        kept += 1
        if kept > KEEP_BY_HASH - len(current):
            entry.unlink()


# --- the repository --------------------------------------------------------------------


class AptRepository:
    """One suite and component of signed packages under `root`, published one .deb at a time."""

    def __init__(self, root: Path, key: SigningKey, suite: str = "stable", component: str = "main", *,
                 origin: str = "sevenleague", label: str | None = None, codename: str | None = None,
                 description: str = "packages built by the sevenleague build service",
                 architectures: Sequence[str] = DEFAULT_ARCHITECTURES, valid_for: timedelta | None = None,
                 previous_keys: Sequence[SigningKey] = ()) -> None:
        for what, value in (("suite", suite), ("component", component), ("codename", codename or suite)):
            if not _ARCHIVE_WORD.match(value):
                raise UsageError(f"apt repository {what} {value!r} is not a single word",
                                 hint="use letters, digits, '.', '_' or '-', e.g. `stable`")
        for architecture in architectures:
            if not ARCHITECTURE.fullmatch(architecture) or architecture == "all":
                raise UsageError(f"apt architecture {architecture!r} is not a Debian architecture name",
                                 hint="use dpkg's names, e.g. amd64 or arm64")
        self.root = root.absolute()
        self.key = key
        self.previous_keys = tuple(previous_keys)
        self.suite = suite
        self.component = component
        self.architectures = tuple(architectures)
        self.release = ReleaseFields(
            origin=origin, label=label or origin, suite=suite, codename=codename or suite,
            component=component, architectures=(), description=description, valid_for=valid_for,
        )
        for signer in self.signers:
            home = signer.gnupg_home.absolute()
            if home == self.root or self.root in home.parents:
                raise UsageError(f"GNUPGHOME {home} is inside the served repository {self.root}",
                                 hint="keep the secret key outside the served root, e.g. $LEAGUE_HOME/gnupg")

    @property
    def signers(self) -> tuple[SigningKey, ...]:
        """The new key first; previous keys keep signing during a rotation so no host is cut off."""
        return (self.key, *self.previous_keys)

    @property
    def dists(self) -> Path:
        return self.root / "dists"

    @property
    def cache(self) -> Path:
        """apt-ftparchive's record of each pool file, so a publish does not re-hash every old .deb."""
        return self.root / ".cache" / "packages.db"

    @property
    def keyring(self) -> Path:
        return self.root / KEYRING_NAME

    @property
    def armored_keyring(self) -> Path:
        return self.root / ARMORED_KEYRING_NAME

    # --- reading ---------------------------------------------------------------------------

    def _current_generation(self) -> Path | None:
        if not self.dists.is_symlink():
            if self.dists.exists():
                raise ArchiveError(f"{self.dists} is a directory, not the symlink this repository swaps",
                                   hint="move it away and call reindex() to rebuild the index")
            return None
        generation = self.root / self.dists.readlink()
        if not generation.is_dir():
            raise ArchiveError(f"{self.dists} points at {generation}, which does not exist",
                               hint=f"remove the {self.dists} symlink and call reindex() to rebuild it")
        return generation

    def _check_layout(self, generation: Path) -> None:
        """One root serves one suite and component; rebuilding would silently drop any other."""
        served = sorted(f"{suite.name}/{component.name}" for suite in generation.iterdir() if suite.is_dir()
                        for component in suite.iterdir() if component.is_dir())
        if served not in ([], [f"{self.suite}/{self.component}"]):
            raise UsageError(f"{self.root} already serves {', '.join(served)}; one repository root serves "
                             f"one suite and component, not also {self.suite}/{self.component}",
                             hint="give each suite its own repository root, e.g. apt/dev and apt/prod")

    def _read_index(self, generation: Path) -> list[PublishedPackage]:
        found: dict[tuple[str, str, str], PublishedPackage] = {}
        for packages_file in sorted((generation / self.suite / self.component).glob("binary-*/Packages")):
            for package in parse_packages_index(packages_file.read_text()):
                found.setdefault((package.name, package.version, package.architecture), package)
        return sort_packages(found.values())

    def packages(self) -> list[PublishedPackage]:
        """Every published package, as the served index lists it (oldest version first per name)."""
        generation = self._current_generation()
        return [] if generation is None else self._read_index(generation)

    def sources_line(self, base_url: str, keyring: str = HOST_KEYRING_PATH) -> str:
        return render_sources_line(base_url, self.suite, self.component, keyring)

    def sources_stanza(self, base_url: str, keyring: str | None = None) -> str:
        """deb822 `.sources` text; without `keyring` the armored public key is embedded in it."""
        if keyring is None:
            if not self.armored_keyring.exists():
                raise ArchiveError(f"{self.armored_keyring} does not exist yet",
                                   hint="publish a package (or call reindex()) first")
            keyring = self.armored_keyring.read_text()
        return render_sources_stanza(base_url, self.suite, self.component, keyring)

    # --- publishing ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[Path | None]:
        """One publisher at a time; yields the current generation read under the lock."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            generation = self._current_generation()
            if generation is not None:
                self._check_layout(generation)
            yield generation

    def publish(self, deb: Path) -> PublishedPackage:
        """Add `deb` to the pool and serve a new signed index listing it beside every earlier version."""
        control = read_deb_control(deb)
        candidate = PublishedPackage(
            name=control.name, version=control.version, architecture=control.architecture,
            filename=pool_filename(self.component, control), sha256=sha256_file(deb), size=deb.stat().st_size,
        )
        with self._locked() as generation:
            published = [] if generation is None else self._read_index(generation)
            existing = published_conflict(published, candidate)
            if existing is not None:
                return existing
            target = self.root / candidate.filename
            added = self._add_to_pool(deb, target, candidate)
            try:
                new_generation = self._publish_index(generation)
            except BaseException:
                if added:
                    target.unlink(missing_ok=True)
                raise
            for package in self._read_index(new_generation):
                if (package.name, package.version, package.architecture) == (
                        candidate.name, candidate.version, candidate.architecture):
                    return package
        raise ArchiveError(f"apt-ftparchive did not index {candidate.filename}",
                           hint="check that the file name ends in _<arch>.deb")

    def _add_to_pool(self, deb: Path, target: Path, candidate: PublishedPackage) -> bool:
        """Copy into the pool; False when the identical file is already there. Never overwrites."""
        if not target.exists():
            _copy_atomic(deb, target)
            return True
        if sha256_file(target) == candidate.sha256:
            return False
        raise ArchiveError(
            f"{target} already exists with other content than {deb}, and pool files never change",
            hint="if the index does not list it (an interrupted publish), delete it and publish again",
        )

    def reindex(self) -> None:
        """Rebuild and re-sign the index from the pool: after a key rotation, or before Valid-Until."""
        with self._locked() as generation:
            self._publish_index(generation)

    def _generations(self) -> list[tuple[int, Path]]:
        found = []
        for path in self.root.iterdir():
            match = _GENERATION.match(path.name)
            if match and path.is_dir() and not path.is_symlink():
                found.append((int(match.group(1)), path))
        return sorted(found)

    def _publish_index(self, current: Path | None) -> Path:
        generations = self._generations()
        number = (generations[-1][0] + 1) if generations else 1
        generation = self.root / f"{GENERATION_PREFIX}{number}"
        try:
            generation.mkdir(mode=0o755)
            self._build_index(generation, current)
            export_keyring(self.signers, self.keyring)
            self._swap(generation)
        except BaseException:
            shutil.rmtree(generation, ignore_errors=True)
            raise
        self._prune(number)
        return generation

    def _build_index(self, generation: Path, current: Path | None) -> None:
        pool = self.root / "pool" / self.component
        pool.mkdir(parents=True, exist_ok=True)
        self.cache.parent.mkdir(exist_ok=True)
        debs = [str(p.relative_to(self.root)) for p in pool.rglob("*.deb") if not p.name.startswith(".")]
        architectures = index_architectures(self.architectures, pool_architectures(debs))
        suite = generation / self.suite
        for architecture in architectures:
            relative = Path(self.component) / f"binary-{architecture}"
            directory = suite / relative
            directory.mkdir(parents=True)
            index = run_tool(packages_argv(self.cache, architecture, self.component), cwd=self.root,
                             what=f"indexing {pool} for {architecture}", package="apt-utils")
            written = [_write_index_file(directory, "Packages", index),
                       _write_index_file(directory, "Packages.gz", gzip.compress(index, mtime=0))]
            previous = None if current is None else current / self.suite / relative / "by-hash" / "SHA256"
            _fill_by_hash(directory / "by-hash" / "SHA256", written, previous)
        fields = dataclasses.replace(self.release, architectures=architectures)
        with tempfile.TemporaryDirectory(prefix="league-apt-") as scratch:
            conf = Path(scratch) / "release.conf"
            conf.write_text(render_release_conf(fields))
            release = run_tool(["apt-ftparchive", "-c", str(conf), "release", "."], cwd=suite,
                               what=f"writing the Release file of {self.suite}", package="apt-utils")
        _write_index_file(suite, "Release", release)
        sign_release(self.signers, suite / "Release")
        for signed in ("InRelease", "Release.gpg"):
            (suite / signed).chmod(0o644)

    def _swap(self, generation: Path) -> None:
        """Point `dists` at the new generation in one rename: readers see old or new, never a mix."""
        link = self.root / f".dists-link-{os.getpid()}"
        link.unlink(missing_ok=True)
        link.symlink_to(generation.name)
        try:
            link.replace(self.dists)
        except BaseException:
            link.unlink(missing_ok=True)
            raise
        _fsync_directory(self.root)

    def _prune(self, current: int) -> None:
        """Keep the served generation and the one before it (a request may still be reading it)."""
        generations = self._generations()
        older = [number for number, _ in generations if number < current]
        keep = {current, *older[-1:]}
        for number, path in generations:
            if number not in keep:
                shutil.rmtree(path, ignore_errors=True)


# --- serving ---------------------------------------------------------------------------


def _route_path(scope: Scope) -> str:
    path: str = scope.get("path", "")
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        path = path[len(root_path):]
    return path.lstrip("/")


def apt_static_app(root: Path) -> ASGIApp:
    """The repository as an ASGI app (mount it at /apt): the public files of `root`, nothing else.

    Hidden entries (generations are reached only through `dists`), the lock file and any
    directory listing answer 404; pool and by-hash files are marked immutable for caches.
    """
    from starlette.responses import PlainTextResponse
    from starlette.staticfiles import StaticFiles

    files = StaticFiles(directory=root, check_dir=False)
    not_found = PlainTextResponse("not found\n", status_code=404)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        route_path = _route_path(scope)
        if scope["type"] != "http" or not is_public(route_path) or not root.is_dir():
            await not_found(scope, receive, send)
            return
        header = (b"cache-control", cache_control(route_path).encode())

        async def send_with_cache_control(message: Message) -> None:
            if message["type"] == "http.response.start" and message.get("status") in (200, 206, 304):
                message = {**message, "headers": [*message.get("headers", []), header]}
            await send(message)

        await files(scope, receive, send_with_cache_control)

    return app
