"""Publish a distilled student to the Hugging Face Hub: weights, config, tokenizer, modeling code for
``trust_remote_code``, ONNX files and the model card, in one commit through ``huggingface_hub.HfApi``.

The endpoint and token follow ``huggingface_hub``'s own settings (``HF_ENDPOINT``, ``HF_TOKEN``, the
stored login) unless given; the token is passed to the client only, never printed or written.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from .cards import CARD_FILE, write_card

logger = logging.getLogger(__name__)

#: never uploaded: temporary files, caches and intermediate checkpoints of a training run
# training_args.bin is a pickle of the run's arguments: never uploaded (it may hold local paths, and held tokens)
IGNORE_PATTERNS = ["*.tmp", "teacher_cache/**", "checkpoint-*/**", "runs/**", "**/.ipynb_checkpoints/**",
                   "training_args.bin", "**/training_args.bin"]


class PushError(ValueError):
    """A folder that is not a complete student to publish, or a Hub that refused or could not be reached."""


def unreachable(endpoint: str, error: BaseException) -> PushError:
    """The one-line error for a Hub that cannot be reached (network down, wrong ``HF_ENDPOINT``, offline mode)."""
    if type(error).__name__ == "OfflineModeIsEnabled":
        why = "offline mode is on (HF_HUB_OFFLINE=1); unset it to push"
    else:
        why = f"{type(error).__name__}; check the network, or set HF_ENDPOINT to a Hub you can reach"
    return PushError(f"could not reach the Hub at {endpoint}: {why}. Nothing was created or uploaded.")


def _network_errors() -> tuple:
    import requests
    from huggingface_hub.errors import OfflineModeIsEnabled

    return requests.ConnectionError, requests.Timeout, OfflineModeIsEnabled


def check_student_folder(student_dir: str | os.PathLike) -> dict:
    """The folder's config; raises :class:`PushError` naming what is missing for a loadable upload."""
    folder = Path(student_dir)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise PushError(f"{folder}: no config.json; pass a folder written by save_pretrained")
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
        raise PushError(f"{folder}: no weights (*.safetensors)")
    config = json.loads(config_path.read_text())
    for auto_class, ref in (config.get("auto_map") or {}).items():
        module = ref.split("--")[-1].split(".")[0]
        if not (folder / f"{module}.py").is_file():
            raise PushError(f"{folder}: config.auto_map[{auto_class!r}] names {module}.py, which is missing; "
                            "trust_remote_code loading would fail")
    if not (folder / "tokenizer_config.json").is_file():
        raise PushError(f"{folder}: no tokenizer (tokenizer_config.json); save the tokenizer beside the model")
    return config


def push_student_to_hub(
    student_dir: str | os.PathLike,
    repo_id: str,
    *,
    token: str | bool | None = None,
    endpoint: str | None = None,
    private: bool | None = None,
    commit_message: str = "Upload distilled student (hf-distill)",
    card: bool = True,
    base_model: str | None = None,
    create_pr: bool = False,
    overwrite_card: bool = False,
):
    """Create ``repo_id`` if needed and upload ``student_dir`` in one commit; returns the ``CommitInfo``.

    With ``card`` the model card is (re)written from the folder's ``efficiency.json`` and
    ``distillation.json`` first (see :func:`hf_distill.shipping.cards.write_card`; a hand-written README.md is
    kept unless ``overwrite_card``); ONNX files under ``student_dir/onnx`` go along. The repository id,
    the folder and the token are checked before anything is created; a repository this call created is
    deleted again when the upload fails.
    """
    import requests
    from huggingface_hub import HfApi, get_token
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise PushError(f"invalid repository id {repo_id!r}: {e}") from None
    folder = Path(student_dir)
    check_student_folder(folder)
    token = token if isinstance(token, str) else (None if token is False else get_token())
    if not token:
        raise PushError("no Hugging Face token: set HF_TOKEN, run `hf auth login`, or pass token=")
    if card:
        write_card(folder, repo_id, base_model=base_model, overwrite=overwrite_card)
    elif not (folder / CARD_FILE).is_file():
        logger.warning("%s has no %s: the repository will have no model card", folder, CARD_FILE)
    api = HfApi(endpoint=endpoint, token=token)
    try:
        api.whoami()
    except _network_errors() as e:
        raise unreachable(api.endpoint, e) from None
    except (HfHubHTTPError, requests.HTTPError) as e:  # whoami re-raises a 401 as a plain requests error
        status = getattr(getattr(e, "response", None), "status_code", None) or "invalid token"
        raise PushError(f"the Hub at {api.endpoint} refused the token ({status}): check HF_TOKEN or log in again "
                        "with a token that has write access") from None
    existed = api.repo_exists(repo_id, repo_type="model")
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    try:
        info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                                 commit_message=commit_message, ignore_patterns=IGNORE_PATTERNS, create_pr=create_pr)
    except BaseException as e:
        if not existed:  # leave no empty repository behind
            try:
                api.delete_repo(repo_id, repo_type="model")
            except Exception as cleanup:  # the upload error is the one to report
                logger.warning("could not delete the empty repository %s: %s", repo_id, cleanup)
        if isinstance(e, _network_errors()):
            raise PushError(f"the connection to the Hub at {api.endpoint} broke during the upload "
                            f"({type(e).__name__})"
                            + ("; the repository it had created was deleted" if not existed else
                               "; the repository is unchanged (uploads are one commit)")) from None
        raise
    logger.info("pushed %s to %s (commit %s)", folder, repo_id, info.oid)
    return info


def push_trainer_to_hub(trainer, commit_message: str = "End of training", token: str | None = None,
                        bench_split=None, bench_runs: int = 100, base_model: str | None = None, **record):
    """Save a :class:`~hf_distill.DistillationTrainer`'s student (``save_student``), measure it when
    ``bench_split`` (raw evaluation rows) is given, and upload it with :func:`push_student_to_hub`: the same
    folder layout and model card as ``hf-distill bench`` + ``push``. ``record`` goes to ``distillation.json``.
    The repository is ``args.hub_model_id`` (default: the output folder's name). ``Trainer.push_to_hub`` keeps
    its upstream behaviour; this is the student-shipping path."""
    from .bench import bench_student

    args = trainer.args
    out = args.output_dir
    teacher = trainer.accelerator.unwrap_model(trainer.teacher) if trainer.teacher is not None else None
    teacher_dir = record.pop("teacher", None) or getattr(getattr(teacher, "config", None), "_name_or_path", None)
    trainer.save_student(out, teacher=teacher_dir, **record)
    if not trainer.is_world_process_zero():
        return None
    if bench_split is not None:
        bench_student(out, bench_split, teacher_dir=teacher_dir or None, runs=bench_runs,
                      dataset_name=record.get("dataset"))
    repo_id = args.hub_model_id or os.path.basename(os.path.abspath(out))
    return push_student_to_hub(out, repo_id, token=token or args.hub_token, base_model=base_model,
                               private=args.hub_private_repo, commit_message=commit_message or "Upload")
