"""Share a run on the Hugging Face Hub: stage the repo folder, write its model card, push it.

The folder that would be uploaded is always built first (:func:`stage_upload`) in a temporary
directory (or ``--out`` for a dry run), never inside the run directory, and scanned for the Hub
token before anything leaves the machine. The upload itself is ``HfApi.create_repo(exist_ok=True)``
(+ ``create_branch`` for a revision) + ``upload_folder``: every step is idempotent, so a failed
push is fixed by running it again.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ..errors import SpectrumError
from .run_dir import read_run
from .staging import default_staging_dir, stage_upload


def _check_repo_id(repo_id: str) -> None:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        reason = str(error).splitlines()[0]
        raise SpectrumError(f"invalid repo id '{repo_id}' (expected OWNER/NAME): {reason}") from None


def _resolve_token(token: str | None) -> str:
    """The explicit token, else huggingface_hub's own resolution (HF_TOKEN, then the cached login)."""
    from huggingface_hub import get_token

    if not token:
        try:
            token = get_token()
        except Exception as error:  # a configured OIDC exchange that failed
            raise SpectrumError(f"cannot get a Hugging Face token: {_first_line(error)}") from None
    if not token:
        raise SpectrumError(
            "no Hugging Face token: set HF_TOKEN or run `hf auth login` with a write token "
            "(or use --dry-run to stage the upload without pushing)"
        )
    return token


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection-level errors of whichever HTTP client this huggingface_hub uses."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]  # requests' errors subclass these
    for module in ("httpx2", "httpx"):  # huggingface_hub 2.x, 1.x
        try:
            errors.append(__import__(module).TransportError)
        except (ImportError, AttributeError):
            continue
    return tuple(errors)


def _hub_error(error: Exception, repo_id: str, endpoint: str) -> SpectrumError:
    """One line saying what went wrong and what to do; the local run is untouched either way."""
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    response = getattr(error, "response", None) if isinstance(error, HfHubHTTPError) else None
    status = getattr(response, "status_code", None)
    if status in (401, 403):
        return SpectrumError(
            f"Hub authentication failed for '{repo_id}' (HTTP {status}): the token is invalid or cannot "
            "write to this namespace; set HF_TOKEN or run `hf auth login` with a write token"
        )
    if status == 404:
        return SpectrumError(f"Hub answered 404 for '{repo_id}': the repo or the revision does not exist")
    if status is not None:
        return SpectrumError(f"Hub request for '{repo_id}' failed (HTTP {status}): {_first_line(error)}")
    if isinstance(error, OfflineModeIsEnabled):
        return SpectrumError("HF_HUB_OFFLINE is set: unset it to push (or use --dry-run)")
    if isinstance(error, _transport_errors()):
        return SpectrumError(
            f"cannot reach the Hugging Face Hub at {endpoint} ({type(error).__name__}: "
            f"{_first_line(error)}); check the network or HF_ENDPOINT and retry (re-pushing is safe)"
        )
    # e.g. "Invalid metadata in README.md." + one line per problem: keep them all, on one line
    detail = " ".join(str(error).split()) or type(error).__name__
    return SpectrumError(f"push to '{repo_id}' failed: {type(error).__name__}: {detail}")


def push_run(
    run_dir: str | Path,
    repo_id: str,
    private: bool | None = False,
    revision: str | None = None,
    commit_message: str | None = None,
    eval_dir: str | Path | None = None,
    merged: bool = False,
    dry_run: bool = False,
    token: str | None = None,
    *,
    out_dir: str | Path | None = None,
    license: str | None = None,
) -> str:
    """Upload a run (adapter, tokenizer, recipe, card, eval) to ``repo_id``; returns the commit URL.

    ``private`` applies when the repo is created (``None``: the namespace's default, like TRL's
    ``hub_private_repo``). With ``dry_run`` nothing is sent: the folder is staged at ``out_dir``
    (default :func:`default_staging_dir`) and its path returned. Any failure is a one-line
    :class:`SpectrumError`; the run directory is only read, and re-running is safe.
    """
    _check_repo_id(repo_id)
    read_run(run_dir)  # fail on a bad run dir before asking for a token
    if dry_run:
        out = Path(out_dir) if out_dir is not None else default_staging_dir(run_dir)
        stage_upload(run_dir, out, eval_dir, merged, repo_id, license=license, token=token)
        return str(out)
    token = _resolve_token(token)
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    message = commit_message or f"Upload spectrum-tune run {Path(run_dir).resolve().name}"
    with tempfile.TemporaryDirectory(prefix="spectrum-hub-") as temporary:
        stage = Path(temporary) / "repo"
        stage_upload(run_dir, stage, eval_dir, merged, repo_id, license=license, token=token)
        try:
            url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            target = getattr(url, "repo_id", None) or repo_id  # "NAME" resolves to the token's namespace
            if revision and revision != "main":
                api.create_branch(target, branch=revision, exist_ok=True, repo_type="model")
            commit = api.upload_folder(
                repo_id=target,
                folder_path=stage,
                commit_message=message,
                revision=revision,
                repo_type="model",
            )
        except Exception as error:
            raise _hub_error(error, repo_id, api.endpoint) from error
    return str(commit.commit_url)


def push_trained_run(output_dir: str | Path, config: Any, token: str | None) -> str:
    """The recipe's ``push_to_hub``: upload a run that just finished training (our push, not
    Trainer's, which would upload the whole output dir with ``training_args.bin``)."""
    repo_id = config.hub_model_id or Path(output_dir).name
    try:
        return push_run(
            output_dir, repo_id, private=config.hub_private_repo, revision=config.hub_revision, token=token
        )
    except SpectrumError as error:
        raise SpectrumError(
            f"{error} (the run is saved; retry with `spectrum-tune push {output_dir} --repo-id {repo_id}`)"
        ) from None
