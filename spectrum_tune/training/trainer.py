"""SpectrumConfig and SpectrumTrainer: TRL's SFTTrainer trained on multi-reference groups.

One dataset row is one group (a context and its K references), so any sampler, gradient
accumulation or data-parallel split keeps a group whole on one device: the KL inside the
spectrum loss always sees every reference of its group. The collator flattens a batch of
groups into sequences; ``compute_loss`` scores them with TRL's fused LM head, folds the
sequence log-probs back into ``[G, K]`` and applies :func:`spectrum_loss_per_group`.
Rows with one reference are ordinary SFT rows and get TRL's token-mean NLL exactly, or the
GEM loss (``spectrum_loss_type="gem"``, see :mod:`spectrum_tune.training.gem`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from accelerate.utils import is_peft_model
from torch.utils.checkpoint import checkpoint
from trl import SFTTrainer

from ..models import load_for_trainer
from .collator import SpectrumCollator
from .config import SpectrumConfig
from .data import FORMAT_COLUMN, SOURCE_COLUMN, load_multiref
from .gem import chunked_gem_loss
from .losses import sequence_logps, spectrum_loss_per_group
from .prefix import continuation_inputs, encode_prompts
from .tokenize import tokenize_group

__all__ = ["SpectrumCollator", "SpectrumConfig", "SpectrumTrainer"]

TOKENIZED_COLUMNS = ["prompt_ids", "completion_ids", "completion_mask", "weights"]


def _score_chunk(model: torch.nn.Module, **model_inputs: Any) -> tuple[torch.Tensor, ...]:
    """Sequence log-probs of one chunk, plus its summed token entropy and top-1 hits."""
    outputs = model(**model_inputs, fused_lm_head=True)
    logps = sequence_logps(outputs.log_probs, outputs.label_mask)
    entropy = outputs.entropy.detach().float().sum() if outputs.entropy is not None else logps.new_zeros(())
    top1 = outputs.is_top1.detach().float().sum() if outputs.is_top1 is not None else logps.new_zeros(())
    return logps, entropy, top1


def _score_full_sequences(model, input_ids, attention_mask, labels) -> tuple[torch.Tensor, ...]:
    width = int(attention_mask.sum(dim=-1).max())
    return _score_chunk(
        model, input_ids=input_ids[:, :width], attention_mask=attention_mask[:, :width],
        labels=labels[:, :width], use_cache=False,
    )


def _score_continuations(model, layers, prefix_mask, group_index, ids, mask, labels) -> tuple:
    # Builds the expanded cache inside, so a two-pass recompute starts from the prompt's tensors.
    return _score_chunk(model, **continuation_inputs(layers, prefix_mask, group_index, ids, mask, labels))


def _select_groups(inputs: dict[str, Any], keep: torch.Tensor) -> dict[str, torch.Tensor]:
    """The model inputs of the groups in ``keep`` ``[G]`` only (group indices renumbered)."""
    rows = keep[inputs["group_index"]]
    renumber = keep.long().cumsum(0) - 1
    out = {key: inputs[key][rows] for key in ("input_ids", "attention_mask", "labels", "cont_ids",
                                             "cont_mask", "cont_labels") if key in inputs}
    out["group_index"] = renumber[inputs["group_index"][rows]]
    if "prefix_ids" in inputs:
        # Drop the left-padding columns that only the removed groups' longer prompts needed.
        mask = inputs["prefix_mask"][keep]
        first = int(mask.any(0).long().argmax())
        out["prefix_ids"], out["prefix_mask"] = inputs["prefix_ids"][keep][:, first:], mask[:, first:]
    return out


def _check_plain_lm_head(config: Any) -> None:
    # TRL's fused head rescales/softcaps logits for these models; the GEM head does not (yet).
    for name in ("final_logit_softcapping", "logit_scale", "output_multiplier", "lm_head_multiplier",
                 "logits_scaling"):
        if getattr(config, name, None) not in (None, 1, 1.0):
            raise NotImplementedError(f"spectrum_loss_type='gem' does not support models with {name}")


def _gem_chunk(model, backbone, head, beta, h, input_ids, attention_mask, labels) -> tuple[torch.Tensor, ...]:
    """Per-row summed GEM loss of full sequences, plus summed entropy, top-1 hits and log-probs.

    The model runs its ordinary forward with ``logits_to_keep=1`` (so through DDP/PEFT wrappers,
    and only a ``[n, 1, V]`` logits tensor), a hook keeps the backbone's last hidden state, and
    :func:`chunked_gem_loss` applies the LM head in chunks of positions.
    """
    width = int(attention_mask.sum(dim=-1).max())
    captured = []
    handle = backbone.register_forward_hook(lambda _module, _args, output: captured.append(output[0]))
    try:
        model(input_ids=input_ids[:, :width], attention_mask=attention_mask[:, :width], use_cache=False,
              logits_to_keep=1)
    finally:
        handle.remove()
    labels = labels[:, 1:width]
    mask = labels != -100
    hidden = captured[-1][:, :-1][mask].to(head.weight.device)
    out = chunked_gem_loss(hidden, head.weight, labels[mask].to(head.weight.device), head.bias, beta, h,
                           with_stats=True)
    rows = mask.nonzero()[:, 0].to(out.loss.device)
    per_row = out.loss.new_zeros(len(labels)).index_add(0, rows, out.loss)
    return per_row, out.entropy.sum(), out.is_top1.float().sum(), out.log_prob.sum()


def _run_chunks(score: Any, shared: tuple, tensors: list[torch.Tensor], size: int) -> list[tuple]:
    """``score(*shared, *chunk)`` on consecutive chunks of ``size`` rows of ``tensors``.

    With more than one chunk and grad enabled, each chunk runs under non-reentrant activation
    checkpointing: the forward keeps no activations and backward recomputes one chunk at a time
    with its exact upstream gradient (the two-pass algorithm), so memory does not grow with rows.
    """
    total = tensors[0].size(0)
    two_pass = total > size and torch.is_grad_enabled()
    parts = []
    for start in range(0, total, size):
        chunk = [tensor[start : start + size] for tensor in tensors]
        if two_pass:
            parts.append(checkpoint(score, *shared, *chunk, use_reentrant=False))
        else:
            parts.append(score(*shared, *chunk))
    return parts


class SpectrumTrainer(SFTTrainer):
    """`trl.SFTTrainer` for multi-reference groups with the spectrum loss (see `SpectrumConfig`).

    Accepts the same model inputs as SFTTrainer (a model id or path, a `PreTrainedModel`,
    a `peft_config` for LoRA/QLoRA) and a dataset of multi-reference rows (see
    `spectrum_tune.training.data`), plain prompt/completion rows (grouped by prompt), or rows already
    tokenised into `prompt_ids`/`completion_ids`/`completion_mask`/`weights`.
    """

    _tag_names: ClassVar[list[str]] = ["trl", "sft", "spectrum-tune"]
    _name = "Spectrum"

    def __init__(self, model: Any, args: SpectrumConfig | None = None, **kwargs: Any):
        if args is None:
            args = SpectrumConfig(output_dir="spectrum-tune-output")
        elif not isinstance(args, SpectrumConfig):
            raise TypeError(f"SpectrumTrainer needs a SpectrumConfig, got {type(args).__name__}")
        custom_collator = kwargs.get("data_collator") is not None
        # A model name resolves as the CLI's model_name_or_path does (aliases, GGUF directories);
        # TRL then gets the loaded object, so it must not see the model_init_kwargs applied here.
        init_kwargs, named = args.model_init_kwargs, isinstance(model, str)
        quantization = kwargs.pop("quantization_config", None) if named else None
        model, kwargs["processing_class"] = load_for_trainer(
            model, init_kwargs, kwargs.get("processing_class"), args, quantization
        )
        args.model_init_kwargs = None if named else init_kwargs
        super().__init__(model, args=args, **kwargs)
        args.model_init_kwargs = init_kwargs
        if not custom_collator:
            self.data_collator = SpectrumCollator(
                self._tokenizer.pad_token_id,
                length_normalize=args.spectrum_length_normalize,
                prefix_sharing=args.spectrum_prefix_sharing and not args.gradient_checkpointing,
            )

    # -- data ---------------------------------------------------------------------------------

    def _prepare_dataset(self, dataset, processing_class, args, packing, formatting_func, dataset_name):
        columns = dataset.column_names or []
        if set(TOKENIZED_COLUMNS) <= set(columns):
            return dataset
        if formatting_func is not None:
            raise ValueError("SpectrumTrainer does not take a formatting_func; render prompts in the data")
        if "references" not in columns or SOURCE_COLUMN not in columns:
            dataset = load_multiref(dataset)
            columns = dataset.column_names
        tokenizer = self._tokenizer
        if any(fmt == "incontext" for fmt in dataset[FORMAT_COLUMN]) and not tokenizer.chat_template:
            raise ValueError("in-context rows need a tokenizer with a chat template")
        max_length = args.max_length
        dataset = dataset.map(
            lambda row: tokenize_group(row, tokenizer, max_length),
            remove_columns=[c for c in columns if c not in TOKENIZED_COLUMNS] or None,
            desc=f"Tokenizing {dataset_name} groups",
        )
        if args.shuffle_dataset:
            dataset = dataset.shuffle(seed=args.seed)
        return dataset

    def _set_signature_columns_if_needed(self):
        if self._signature_columns is None:
            self._signature_columns = list(TOKENIZED_COLUMNS)

    def _get_num_items_in_batch(self, batch_samples, device):
        # The loss is a sum over groups divided by the total of the groups' denominators (mean
        # completion lengths), so under gradient accumulation the count must be that total.
        if not batch_samples or "loss_denominator" not in batch_samples[0]:
            return super()._get_num_items_in_batch(batch_samples, device)
        if not self.model_accepts_loss_kwargs:
            return None
        total = torch.stack([batch["loss_denominator"].sum() for batch in batch_samples]).sum()
        total = total.to(device)
        if self.args.average_tokens_across_devices and self.args.world_size > 1:
            total = self.accelerator.gather(total).sum()
        return total

    # -- loss ---------------------------------------------------------------------------------

    def _sequence_logps(self, model, inputs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Log-prob of every sequence in the batch, forwarded in chunks of `spectrum_chunk_size`
        (two-pass when there are several, see :func:`_run_chunks`). With prefix sharing the
        prompts are encoded once and each chunk runs its continuations on their cache.
        """
        if "prefix_ids" in inputs:
            layers = encode_prompts(model, inputs["prefix_ids"], inputs["prefix_mask"])
            score, keys = _score_continuations, ("group_index", "cont_ids", "cont_mask", "cont_labels")
            shared = (model, layers, inputs["prefix_mask"])
        else:
            score, keys = _score_full_sequences, ("input_ids", "attention_mask", "labels")
            shared = (model,)
        parts = _run_chunks(score, shared, [inputs[key] for key in keys], self.args.spectrum_chunk_size)
        logps = torch.cat([part[0] for part in parts])
        entropy = torch.stack([part[1] for part in parts]).sum()
        top1 = torch.stack([part[2] for part in parts]).sum()
        return logps, entropy, top1

    def _gem_losses(self, model, inputs, single, mode) -> tuple[torch.Tensor, ...]:
        """The GEM path: multi-reference groups scored as usual, K = 1 rows by :func:`_gem_chunk`.

        Returns `_sequence_logps`'s triple (log-probs zero on the K = 1 rows, which the loss does
        not read) plus each group's summed GEM token loss ``[G]`` (zero on multi-reference groups).
        The K = 1 rows are forwarded in chunks of `spectrum_chunk_size` with the same
        checkpointing rule as `_sequence_logps`. Also logs `gem/nll`, their token-mean NLL.
        """
        rows = single[inputs["group_index"]]
        seq_logps = torch.zeros(rows.shape, device=rows.device)
        entropy_sum = top1_sum = seq_logps.new_zeros(())
        if not rows.all():
            multi_logps, entropy_sum, top1_sum = self._sequence_logps(model, _select_groups(inputs, ~single))
            seq_logps = seq_logps.masked_scatter(~rows, multi_logps)
        per_group = seq_logps.new_zeros(single.shape)
        if rows.any():
            unwrapped = self.accelerator.unwrap_model(model)
            unwrapped = unwrapped.get_base_model() if is_peft_model(unwrapped) else unwrapped
            _check_plain_lm_head(unwrapped.config.get_text_config())
            # The same backbone and head TRL's fused forward uses (`base_model`, output embeddings).
            shared = (model, unwrapped.base_model, unwrapped.get_output_embeddings(), self.args.gem_beta,
                      self.args.gem_h)
            index = rows.nonzero()[:, 0]
            tensors = [inputs[key][index] for key in ("input_ids", "attention_mask", "labels")]
            with self.accelerator.autocast():  # the head runs outside the model's autocast-wrapped forward
                parts = _run_chunks(_gem_chunk, shared, tensors, self.args.spectrum_chunk_size)
            per_group = per_group.index_add(0, inputs["group_index"][index], torch.cat([p[0] for p in parts]))
            entropy_sum = entropy_sum + sum(p[1] for p in parts)
            top1_sum = top1_sum + sum(p[2] for p in parts)
            gather = self.accelerator.gather_for_metrics
            tokens = gather((inputs["labels"][index][:, 1:] != -100).sum()).sum()
            nll = -gather(sum(p[3] for p in parts)).sum()
            self._metrics[mode]["gem/nll"].append((nll / tokens.clamp(min=1)).item())
        return seq_logps, entropy_sum, top1_sum, per_group

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if return_outputs:
            raise ValueError("SpectrumTrainer does not return logits; use prediction_loss_only=True")
        mode = "train" if self.model.training else "eval"
        single = inputs["num_refs"] == 1
        # GEM replaces the NLL of the K = 1 rows in training only (its reference evaluates with CE).
        gem = self.args.spectrum_loss_type == "gem" and mode == "train"
        if gem:
            seq_logps, entropy_sum, top1_sum, gem_per_group = self._gem_losses(model, inputs, single, mode)
        else:
            seq_logps, entropy_sum, top1_sum = self._sequence_logps(model, inputs)
        ref_mask = inputs["ref_mask"]
        logps = seq_logps.new_zeros(ref_mask.shape)
        logps = logps.index_put((inputs["group_index"], inputs["slot_index"]), seq_logps)
        terms = spectrum_loss_per_group(
            logps, inputs["weights"], ref_mask, self.args.spectrum_alpha, self.args.spectrum_beta
        )
        # Same denominators for GEM as for the NLL, so it mixes with multi-reference groups alike.
        per_group = torch.where(single, gem_per_group if gem else -logps[:, 0], terms.loss)
        denominator = inputs["loss_denominator"].sum() if num_items_in_batch is None else num_items_in_batch
        loss = per_group.sum() / torch.as_tensor(denominator).clamp(min=1e-8)
        # As in SFTTrainer: num_items_in_batch counts every rank's items while DDP averages grads.
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * (self.accelerator.num_processes // self.get_tp_size())
        self._log_metrics(mode, inputs, terms, single, entropy_sum, top1_sum)
        return loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        # There are no logits to return: the fused LM head never builds them.
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    def _log_metrics(self, mode, inputs, terms, single, entropy_sum, top1_sum) -> None:
        gather = self.accelerator.gather_for_metrics
        num_tokens = gather((inputs["labels"][:, 1:] != -100).sum()).sum()
        if num_tokens > 0:
            self._metrics[mode]["entropy"].append((gather(entropy_sum).sum() / num_tokens).item())
            self._metrics[mode]["mean_token_accuracy"].append((gather(top1_sum).sum() / num_tokens).item())
        multi = ~single
        groups = gather(multi.sum()).sum()
        if groups > 0:
            for name, values in (
                ("mass", (-terms.mass).exp()),
                ("kl", terms.match),
                ("q_entropy", terms.q_entropy),
            ):
                total = gather(torch.where(multi, values.detach(), 0.0).sum()).sum()
                self._metrics[mode][f"spectrum/{name}"].append((total / groups).item())
        if mode == "train":
            self._total_train_tokens += gather(inputs["attention_mask"].sum()).sum().item()
        self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
