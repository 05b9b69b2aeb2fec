"""The pure parts of the apt repository: names, versions, the index, the rendered config and sources."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from sevenleague.build._apt_repo import (
    PublishedPackage,
    ReleaseFields,
    cache_control,
    compare_versions,
    control_from_fields,
    index_architectures,
    is_public,
    parse_deb822,
    parse_packages_index,
    pool_architectures,
    pool_directory,
    pool_filename,
    published_conflict,
    render_release_conf,
    render_sources_line,
    render_sources_stanza,
    sort_packages,
)
from sevenleague.build._gpg import (
    ArchiveError,
    SigningKey,
    archive_uid,
    gpg_argv,
    parse_signing_keys,
    signer_args,
)
from sevenleague.errors import UsageError

SHA_A = "a" * 64
SHA_B = "b" * 64


def package(version="1.0", sha256=SHA_A, arch="all", name="hello"):
    filename = f"pool/main/h/{name}/{name}_{version}_{arch}.deb"
    return PublishedPackage(name, version, arch, filename, sha256, 10)


# --- versions --------------------------------------------------------------------------


@pytest.mark.parametrize(("older", "newer"), [
    ("1.0", "1.0.1"), ("1.9", "1.10"), ("1.0~rc1", "1.0"), ("1.0~~", "1.0~"), ("2.0", "1:0.1"),
    ("1.0-1", "1.0-1.1"), ("1.0-9", "1.0-10"), ("1.0", "1.0+b1"), ("1.0", "1.0a"), ("0.9", "1.0~rc1"),
])
def test_versions_order_as_dpkg_orders_them(older, newer):
    assert compare_versions(older, newer) < 0
    assert compare_versions(newer, older) > 0
    assert compare_versions(newer, newer) == 0


def test_packages_sort_by_name_then_oldest_version_first():
    listed = [package("1.10"), package("1.9"), package("1.0~rc1"), package("1.0", name="aardvark")]
    assert [(p.name, p.version) for p in sort_packages(listed)] == [
        ("aardvark", "1.0"), ("hello", "1.0~rc1"), ("hello", "1.9"), ("hello", "1.10")]


# --- control data and the pool ---------------------------------------------------------


def test_deb822_joins_continuation_lines_and_splits_stanzas():
    text = "Package: a\nDescription: short\n long line\n .\n\nPackage: b\nVersion: 2\n"
    assert parse_deb822(text) == [{"Package": "a", "Description": "short\nlong line\n."},
                                  {"Package": "b", "Version": "2"}]


def test_control_takes_the_source_name_without_its_version():
    control = control_from_fields({"Package": "libfoo1", "Version": "1:2.0-1", "Architecture": "amd64",
                                   "Source": "libfoo (2.0-1)"}, "x.deb")
    assert control.source == "libfoo"
    assert pool_filename("main", control) == "pool/main/libf/libfoo/libfoo1_2.0-1_amd64.deb"


@pytest.mark.parametrize(("field", "value"), [
    ("Package", "../evil"), ("Package", "Hello"), ("Version", "1.0/../../x"), ("Version", ""),
    ("Architecture", "amd64/../x"),
])
def test_control_fields_that_could_escape_the_pool_are_refused(field, value):
    fields = {"Package": "hello", "Version": "1.0", "Architecture": "all", field: value}
    with pytest.raises(UsageError, match=rf"x\.deb: {field} "):
        control_from_fields(fields, "x.deb")


def test_pool_directory_follows_debian_with_its_lib_prefix():
    assert pool_directory("main", "hello") == "pool/main/h/hello"
    assert pool_directory("main", "libfoo") == "pool/main/libf/libfoo"
    assert pool_directory("main", "lib") == "pool/main/l/lib"


def test_packages_index_is_read_into_published_packages():
    text = ("Package: hello\nArchitecture: all\nVersion: 1.0\nFilename: pool/main/h/hello/hello_1.0_all.deb\n"
            f"Size: 608\nSHA256: {SHA_A}\nDescription: hi\n there\n\n")
    assert parse_packages_index(text) == [
        PublishedPackage("hello", "1.0", "all", "pool/main/h/hello/hello_1.0_all.deb", SHA_A, 608)]


def test_architectures_are_the_configured_ones_and_those_in_the_pool_but_never_all():
    present = pool_architectures(["pool/main/h/hello/hello_1.0_all.deb",
                                  "pool/main/t/tool/tool_2_riscv64.deb"])
    assert present == {"all", "riscv64"}
    assert index_architectures(("arm64", "amd64"), present) == ("amd64", "arm64", "riscv64")


# --- immutability of versions ----------------------------------------------------------


def test_the_identical_package_again_is_a_no_op():
    published = [package("1.0")]
    assert published_conflict(published, package("1.0")) == published[0]
    assert published_conflict(published, package("1.1")) is None


def test_the_same_version_with_other_content_is_refused_with_the_fix():
    with pytest.raises(ArchiveError) as caught:
        published_conflict([package("1.0", SHA_A)], package("1.0", SHA_B))
    assert caught.value.message.startswith("hello 1.0 (all) is already published with different content")
    assert caught.value.hint == "give the build a new version (e.g. 1.0+1) and publish that"


def test_a_version_that_would_overwrite_another_versions_file_is_refused():
    epoch = PublishedPackage("hello", "1:1.0", "all", "pool/main/h/hello/hello_1.0_all.deb", SHA_A, 10)
    with pytest.raises(ArchiveError, match=r"would overwrite pool/main/h/hello/hello_1\.0_all\.deb"):
        published_conflict([epoch], package("1.0", SHA_B))


# --- rendered text ---------------------------------------------------------------------


FIELDS = ReleaseFields(origin="sevenleague", label="sevenleague demo", suite="stable", codename="stable",
                       component="main", architectures=("amd64", "arm64"), description="demo packages")


def test_release_conf_names_every_field_and_lists_sha256_only():
    assert render_release_conf(FIELDS) == (
        "APT::FTPArchive::Release {\n"
        '  Origin "sevenleague";\n'
        '  Label "sevenleague demo";\n'
        '  Suite "stable";\n'
        '  Codename "stable";\n'
        '  Architectures "amd64 arm64";\n'
        '  Components "main";\n'
        '  Description "demo packages";\n'
        '  Acquire-By-Hash "yes";\n'
        '  MD5 "false";\n'
        '  SHA1 "false";\n'
        '  SHA512 "false";\n'
        "};\n"
    )


def test_release_conf_sets_valid_until_only_when_asked():
    text = render_release_conf(dataclasses.replace(FIELDS, valid_for=timedelta(days=7)))
    assert '  ValidTime "604800";\n' in text


def test_release_conf_refuses_values_that_would_break_its_syntax():
    with pytest.raises(UsageError, match="Label"):
        render_release_conf(dataclasses.replace(FIELDS, label='evil";\nAPT::x "1'))


def test_sources_line_names_the_keyring_and_ends_the_url_with_a_slash():
    assert render_sources_line("http://build:8000/apt", "stable", "main") == (
        "deb [signed-by=/etc/apt/keyrings/league-archive-keyring.gpg] http://build:8000/apt/ stable main\n")


def test_sources_stanza_with_a_keyring_path():
    assert render_sources_stanza("http://build:8000/apt/", "stable", "main", "/etc/apt/keyrings/x.gpg") == (
        "Types: deb\nURIs: http://build:8000/apt/\nSuites: stable\nComponents: main\n"
        "Signed-By: /etc/apt/keyrings/x.gpg\n")


def test_sources_stanza_embeds_an_armored_key_with_dots_for_blank_lines():
    armored = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----\n"
    assert render_sources_stanza("http://build:8000/apt", "dev", "main", armored).endswith(
        "Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n mDMEZ\n =abcd\n"
        " -----END PGP PUBLIC KEY BLOCK-----\n")


@pytest.mark.parametrize("url", ["build:8000/apt", "ftp://build/apt", "http://build/apt x"])
def test_sources_refuse_what_is_not_an_http_url(url):
    with pytest.raises(UsageError, match="not an http"):
        render_sources_line(url, "stable", "main")


# --- serving ---------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "public"), [
    ("dists/stable/InRelease", True), ("pool/main/h/hello/hello_1.0_all.deb", True),
    ("league-archive-keyring.gpg", True), ("league-archive-keyring.asc", True),
    (".lock", False), (".dists-3/stable/InRelease", False), ("dists/../.lock", False), ("", False),
    ("gnupg/private-keys-v1.d/x.key", False), ("dists/stable/.hidden", False),
])
def test_only_the_index_the_pool_and_the_public_key_are_served(path, public):
    assert is_public(path) is public


def test_pool_and_by_hash_files_are_immutable_and_the_index_is_revalidated():
    assert "immutable" in cache_control("pool/main/h/hello/hello_1.0_all.deb")
    assert "immutable" in cache_control("dists/stable/main/binary-amd64/by-hash/SHA256/" + SHA_A)
    assert cache_control("dists/stable/InRelease") == "no-cache"


# --- the key ---------------------------------------------------------------------------


def test_archive_uid_is_fixed_so_a_later_call_finds_the_key():
    assert archive_uid("demo") == "sevenleague demo archive key"


@pytest.mark.parametrize("name", ["", " demo", "a<b>", "x:y", "two\nlines"])
def test_archive_uid_refuses_names_gpg_would_mangle(name):
    with pytest.raises(UsageError, match="not usable in a gpg user id"):
        archive_uid(name)


COLONS = """\
sec:u:255:22:A8136739D63F488A:1700000000:::u:::scSC:::+:::ed25519:::0:
fpr:::::::::1C2F27E1DBCE1565494AC3A8A8136739D63F488A:
grp:::::::::C21ACAD743A3CCA837D2DC5C25B8349AF42A1681:
uid:u::::1700000000::HASH::sevenleague demo archive key::::::::::0:
sec:r:255:22:BBBBBBBBBBBBBBBB:1700000000:::u:::sc:::+:::ed25519:::0:
fpr:::::::::2222222222222222222222222222222222222222:
uid:r::::1700000000::HASH::sevenleague demo archive key::::::::::0:
sec:u:255:22:CCCCCCCCCCCCCCCC:1700000000:::u:::eE:::+:::cv25519:::0:
fpr:::::::::3333333333333333333333333333333333333333:
uid:u::::1700000000::HASH::encrypt only\\x3a no::::::::::0:
sec:u:3072:1:DDDDDDDDDDDDDDDD:1700000000:::u:::scSC:::+::::::0:
fpr:::::::::4444444444444444444444444444444444444444:
uid:u::::1700000000::HASH::other\\x3a key::::::::::0:
ssb:u:3072:1:EEEEEEEEEEEEEEEE:1700000000::::::e:::+::::::0:
fpr:::::::::5555555555555555555555555555555555555555:
"""


def test_only_usable_signing_keys_are_listed_with_their_uids():
    assert parse_signing_keys(COLONS) == [
        ("1C2F27E1DBCE1565494AC3A8A8136739D63F488A", ["sevenleague demo archive key"]),
        ("4444444444444444444444444444444444444444", ["other: key"]),
    ]


def test_gpg_never_prompts_and_signs_with_exactly_the_named_keys(tmp_path):
    argv = gpg_argv(tmp_path, "--export")
    assert argv[:3] == ["gpg", "--homedir", str(tmp_path)]
    assert {"--batch", "--no-tty", "--pinentry-mode"} <= set(argv)
    keys = [SigningKey("A" * 40, "a", tmp_path), SigningKey("B" * 40, "b", tmp_path)]
    assert signer_args(keys) == ["--local-user", f"{'A' * 40}!", "--local-user", f"{'B' * 40}!"]
