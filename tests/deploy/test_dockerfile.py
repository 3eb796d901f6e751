"""deploy/Dockerfile and .dockerignore, read as text (no container engine needed)."""
from __future__ import annotations

import json
import re
import tomllib

from tests.deploy import facts

DOCKERFILE = facts.DEPLOY / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_build_and_runtime_stages_on_python_311_slim_and_the_runtime_runs_as_a_user():
    froms = [rest for word, rest in instructions() if word == "FROM"]
    # A Rust toolchain stage for the pprof core, then the build and runtime stages.
    assert len(froms) == 3 and froms[0].startswith("rust:") and " AS rust" in froms[0], froms
    assert all(f.startswith("python:3.11-slim") for f in froms[1:]), froms
    assert " AS build" in froms[1]
    assert any("from=rust" in rest for word, rest in instructions() if word == "COPY")
    assert any("from=build" in rest for word, rest in instructions() if word in ("RUN", "COPY"))
    users = [rest for word, rest in instructions() if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")


def test_the_entrypoint_is_the_console_script_and_the_command_a_role():
    scripts = tomllib.loads((facts.ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["profefe"] == "services.cli:main"
    [entry] = [json.loads(rest) for word, rest in instructions() if word == "ENTRYPOINT"]
    assert entry == ["profefe"]
    [cmd] = [json.loads(rest) for word, rest in instructions() if word == "CMD"]
    assert facts.check_args(cmd) == "serve"


def test_every_package_is_copied_and_not_ignored():
    sources = set()
    for word, rest in instructions():
        if word == "COPY" and "--from" not in rest:
            *srcs, _dest = rest.split()
            sources.update(s.rstrip("/") for s in srcs)
    for src in sources:
        assert (facts.ROOT / src).exists(), src
    maturin = tomllib.loads((facts.ROOT / "pyproject.toml").read_text())["tool"]["maturin"]
    packages = {maturin["module-name"].split(".")[0], *maturin["python-packages"]}
    crate = maturin["manifest-path"].split("/")[0]
    assert packages | {crate} <= sources
    kept = {line[1:].strip().rstrip("/") for line in (facts.ROOT / ".dockerignore").read_text().splitlines()
            if line.startswith("!")}
    assert sources <= kept, f"ignored but copied: {sources - kept}"


def test_variables_and_ports_are_known_to_the_code():
    env = {}
    for word, rest in instructions():
        if word == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", rest)))
    named = {k for k in env if k.startswith("PROFEFE_")}
    assert named <= facts.known_variables(), named - facts.known_variables()
    exposed = {int(p) for word, rest in instructions() if word == "EXPOSE" for p in rest.split()}
    assert facts.address_port(env["PROFEFE_ADDR"]) in exposed
