"""Staging: exactly the folder that would be uploaded, scanned for the token before it leaves."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from ..errors import SpectrumError
from ..evaluation.report import render_markdown
from ..io import write_json_atomic, write_text_atomic
from ..training.train import RECIPE_FILE
from .card import render_card
from .publish import (
    DATA_KEYS,
    find_in_files,
    machine_paths,
    public_base,
    public_recipe,
    public_results,
    rewrite_adapter_config,
)
from .run_dir import (
    CARD_FILE,
    EVAL_DIR_IN_REPO,
    MODEL_CONFIG_FILES,
    TOKENIZER_FILES,
    Run,
    read_run,
)


def default_staging_dir(run_dir: str | Path) -> Path:
    """``RUN_DIR/../<run name>-hub-staging``: beside the run, never inside it."""
    run = Path(run_dir).resolve()
    return run.parent / f"{run.name}-hub-staging"


def list_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _is_earlier_staging(folder: Path) -> bool:
    from huggingface_hub import metadata_load

    card = folder / CARD_FILE
    if not (card.is_file() and (folder / RECIPE_FILE).is_file()):
        return False
    try:
        tags = (metadata_load(card) or {}).get("tags") or []
    except (ValueError, yaml.YAMLError):
        return False
    return "spectrum-tune" in tags


def _check_out_dir(out: Path, run: Path) -> None:
    out_abs, run_abs = out.resolve(), run.resolve()
    if out_abs == run_abs or run_abs in out_abs.parents or out_abs in run_abs.parents:
        raise SpectrumError(f"staging folder '{out}' must be outside the run directory (and not contain it)")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not _is_earlier_staging(out))):
        raise SpectrumError(f"staging folder '{out}' exists and is not an earlier staging; choose another")


def _ambient_token() -> str | None:
    from huggingface_hub import get_token

    try:
        return get_token()
    except Exception:  # e.g. a failed OIDC exchange: there is no token to scan for, not an error here
        return None


def _refuse_secrets(folder: Path, secrets: list[str]) -> None:
    """Refuse to ship a folder in which any file contains one of ``secrets`` (never printed)."""
    hit = find_in_files(folder, secrets)
    if hit is not None:
        raise SpectrumError(
            f"staged file '{hit[0]}' contains your Hub token; refusing to "
            "upload it (remove the token from the run's files and retry)"
        )


def _refuse_local_paths(folder: Path, run: Run, eval_dir: str | Path | None) -> None:
    """Refuse to ship a folder that names a path of this machine (the last line of defence)."""
    recipe = run.recipe
    data = [part for key in DATA_KEYS for part in str(recipe.get(key) or "").split(",") if part.strip()]
    local = [path for path in (recipe.get("model_name_or_path"), *data) if path and Path(path).exists()]
    hit = find_in_files(folder, machine_paths(run.path, eval_dir, *local))
    if hit is not None:
        raise SpectrumError(
            f"staged file '{hit[0]}' contains the local path '{hit[1]}'; refusing to upload "
            "it (remove the path from the run's files and retry)"
        )


def _save_merged(run: Run, out: Path) -> None:
    """Merge the LoRA into an unquantized copy of the base and save the full model."""
    from ..models import load_model

    base = run.recipe.get("model_name_or_path")
    if not base:
        raise SpectrumError(f"'{run.path / RECIPE_FILE}' has no model_name_or_path to merge into")
    kwargs: dict[str, Any] = {}
    if run.recipe.get("dtype") not in (None, "auto"):
        kwargs["dtype"] = run.recipe["dtype"]
    gguf_file = (run.recipe.get("model_init_kwargs") or {}).get("gguf_file")
    # No quantization_config: a QLoRA adapter is merged into the full-precision base weights.
    model = load_model(base, adapter=str(run.path), gguf_file=gguf_file, **kwargs)
    model.merge_and_unload().save_pretrained(out)


def stage_upload(
    run_dir: str | Path,
    out_dir: str | Path,
    eval_dir: str | Path | None = None,
    merged: bool = False,
    repo_id: str | None = None,
    *,
    license: str | None = None,
    token: str | None = None,
) -> list[str]:
    """Write exactly the repo folder a push would upload into ``out_dir``; returns its files.

    Adapter runs stage the adapter + tokenizer; full fine-tunes their model files; ``merged``
    stages the base with the LoRA merged in instead of the adapter. Base weights are never
    staged otherwise. The folder is built beside ``out_dir`` and renamed into place, so an
    interrupted stage leaves nothing half-written; ``out_dir`` may be an earlier staging.
    """
    from ..evaluation.report import load_results

    run = read_run(run_dir)
    if merged and run.kind != "adapter":
        raise SpectrumError(f"--merged needs a LoRA adapter run; '{run_dir}' holds a full model")
    results = load_results(eval_dir) if eval_dir is not None else None
    out = Path(out_dir)
    _check_out_dir(out, run.path)
    out.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        if merged:
            _save_merged(run, building)
        else:
            names = run.weights + (list(MODEL_CONFIG_FILES) if run.kind == "full" else [])
            for name in names:
                if (run.path / name).is_file():
                    shutil.copyfile(run.path / name, building / name)
        tokenizer_files = [name for name in TOKENIZER_FILES if (run.path / name).is_file()]
        for name in tokenizer_files:
            shutil.copyfile(run.path / name, building / name)
        base = run.recipe.get("model_name_or_path")
        if (building / "adapter_config.json").is_file():
            rewrite_adapter_config(building / "adapter_config.json", public_base(base))
        recipe = public_recipe(run.recipe)[0]  # local paths replaced, as everywhere in the repo
        (building / RECIPE_FILE).write_text(yaml.safe_dump(recipe, sort_keys=True), encoding="utf-8")
        if results is not None:
            results = public_results(results, public_base(base), repo_id)
            (building / EVAL_DIR_IN_REPO).mkdir()
            write_json_atomic(building / EVAL_DIR_IN_REPO / "results.json", results)
            write_text_atomic(building / EVAL_DIR_IN_REPO / "report.md", render_markdown(results))
        card = render_card(run, results, repo_id, merged, license, bool(tokenizer_files))
        (building / CARD_FILE).write_text(str(card), encoding="utf-8")
        _refuse_secrets(building, [token or "", _ambient_token() or ""])
        _refuse_local_paths(building, run, eval_dir)
        if out.exists():
            shutil.rmtree(out)
        building.rename(out)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return list_files(out)
