"""SpectrumTrainer: TRL's SFTTrainer trained on multi-reference groups (config: :mod:`.config`).

One dataset row is one group (a context and its K references), so any sampler, gradient
accumulation or data-parallel split keeps a group whole on one device: the KL inside the
spectrum loss always sees every reference of its group. The collator flattens a batch of
groups into sequences; ``compute_loss`` scores them with TRL's fused LM head, folds the
sequence log-probs back into ``[G, K]`` and applies :func:`spectrum_loss_per_group`.
Rows with one reference are ordinary SFT rows and get TRL's token-mean NLL exactly, or the
GEM loss (``spectrum_loss_type="gem"``, see :mod:`spectrum_tune.training.gem`); TRL's own
single-target rows go through SFTTrainer's preparation and loss (:mod:`.dropin`). Chunked
scoring lives in :mod:`.scoring`, the same-calls-on-every-rank rule in :mod:`.chunks`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from accelerate.utils import is_peft_model
from transformers import TrainingArguments
from transformers.modeling_outputs import CausalLMOutput
from trl import SFTTrainer
from trl.data_utils import get_dataset_column_names

from ..models import load_for_trainer
from .chunks import agree_counts, chunk_count, empty_chunk, uniform_parts
from .collator import SpectrumCollator
from .config import SpectrumConfig
from .dropin import (
    batch_items,
    collect_aux_loss,
    eval_logits,
    label_count,
)
from .group_data import GroupDatasetMixin
from .losses import spectrum_loss_per_group
from .metrics import log_group_metrics
from .preemption import PreemptibleTrainer
from .prefix import (
    PrefixCacheError,
    encode_prompt_stand_in,
    encode_whole_prompts,
    layer_checkpointing,
    notice_fallback,
    notice_once,
    prefix_sharing_blocker,
)
from .scoring import (
    GEM_FULL_LOGITS,
    check_plain_lm_head,
    gem_chunk,
    gem_chunk_full_logits,
    partitioned_by_zero3,
    run_chunks,
    score_after_prompts,
    score_full_sequences,
    select_groups,
)

__all__ = ["SpectrumCollator", "SpectrumConfig", "SpectrumTrainer"]


class SpectrumTrainer(PreemptibleTrainer, GroupDatasetMixin, SFTTrainer):
    """`trl.SFTTrainer` for multi-reference groups with the spectrum loss (see `SpectrumConfig`).

    A drop-in for SFTTrainer: it takes the same model inputs (a model id or path, a
    `PreTrainedModel`, a `peft_config`), the same arguments (`SpectrumConfig`, or an
    `SFTConfig`/`TrainingArguments` turned into one) and every dataset SFTTrainer takes. TRL's
    single-target rows (``text``, ``messages``, ``prompt``/``completion``, pre-tokenised) are
    prepared by TRL and trained with SFTTrainer's own loss; multi-reference rows
    (``references``), prompt/completion rows sharing a prompt (grouped) and in-context rows get
    the spectrum loss. One dataset may hold both kinds (see docs/data.md for how a mixed batch
    is normalised). Preemption-safe: see :mod:`.preemption`.
    """

    _tag_names: ClassVar[list[str]] = ["trl", "sft", "spectrum-tune"]
    _name = "Spectrum"

    def __init__(self, model: Any, args: SpectrumConfig | TrainingArguments | None = None, **kwargs: Any):
        if args is None:
            args = SpectrumConfig(output_dir="spectrum-tune-output")
        elif not isinstance(args, SpectrumConfig):
            if not isinstance(args, TrainingArguments):
                raise TypeError(f"SpectrumTrainer needs a SpectrumConfig, got {type(args).__name__}")
            # As SFTTrainer does for plain TrainingArguments: the same values, our defaults elsewhere.
            values = args.to_dict()
            # to_dict masks every `*_token` field (hub_token, and SFTConfig's eos_token / pad_token)
            values.update({key: getattr(args, key) for key in values if key.endswith("_token")})
            args = SpectrumConfig(**values)
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
            # TRL's collator (padding-free, packing, pad_to_multiple_of, ...) collates the TRL rows.
            self.data_collator = SpectrumCollator(
                self._tokenizer.pad_token_id,
                length_normalize=args.spectrum_length_normalize,
                # whether sharing is exact is checked per batch (prefix.prefix_sharing_blocker)
                prefix_sharing=args.spectrum_prefix_sharing,
                sft_collator=self.data_collator,
            )

    def _get_num_items_in_batch(self, batch_samples, device):
        # A group's loss is divided by its mean completion length, a TRL row's by its tokens, and the
        # batch by the sum: under gradient accumulation that sum over every micro-batch is the count.
        # One rule on every rank, as the count is gathered (TRL's is an integer, ours a float): ours
        # wherever the dataset holds groups, even for a micro-batch of TRL rows only.
        columns = get_dataset_column_names(self.train_dataset) or []
        if not batch_samples or (
            "completion_ids" not in columns and all("num_refs" not in batch for batch in batch_samples)
        ):
            return super()._get_num_items_in_batch(batch_samples, device)
        if not self.model_accepts_loss_kwargs:
            return None
        total = torch.stack([batch_items(batch) for batch in batch_samples]).sum().to(device)
        if self.args.average_tokens_across_devices and self.args.world_size > 1:
            total = self.accelerator.gather(total).sum()
        return total

    # -- loss ---------------------------------------------------------------------------------

    def _prefix_plan(self, model, inputs) -> tuple[bool, int]:
        """(can this rank share its prompts' cache exactly?, its number of real chunks)."""
        share = "prefix_ids" in inputs
        unwrapped = self.accelerator.unwrap_model(model)
        if share and partitioned_by_zero3(model) and layer_checkpointing(unwrapped):
            # the same on every rank: it depends on the engine and the model only
            notice_fallback(
                "DeepSpeed ZeRO-3 cannot recompute a checkpointed prompt pass, whose cache "
                "the layers' own checkpointing would drop; layer checkpointing kept"
            )
            share = False
        if share and inputs["input_ids"].size(0):
            reason = prefix_sharing_blocker(
                unwrapped, int(inputs["attention_mask"].sum(-1).max()), router_aux_loss=self.aux_loss_enabled
            )
            if reason is not None:
                notice_fallback(reason)
                share = False
        return share, chunk_count(inputs["input_ids"].size(0), self.args.spectrum_chunk_size)

    def _empty_chunk(self, inputs) -> list[torch.Tensor]:
        return empty_chunk(inputs["input_ids"].device, self._tokenizer.pad_token_id or 0)

    def _sequence_logps(self, model, inputs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Log-prob of every sequence in the batch, entropy and top-1 sums (see `_padded_logps`)."""
        logps, entropy, top1, padding = self._padded_logps(model, inputs)
        return logps + padding, entropy, top1

    def _padded_logps(self, model, inputs, agreed=None) -> tuple[torch.Tensor, ...]:
        """Log-prob of every sequence in the batch, forwarded in chunks of `spectrum_chunk_size`
        (two-pass when there are several, see :func:`run_chunks`); with prefix sharing each chunk
        runs its continuations on the prompts' cache. Every rank makes the same model calls: the
        ranks agree (one all-reduce, or ``agreed`` = ``(chunks, whether any rank cannot share)``
        from the caller) on the chunk count, padded with empty chunks, and share prompts only if
        all can. Returns log-probs, entropy and top-1 sums, and the empty chunks' exact zero.
        """
        share, chunks = self._prefix_plan(model, inputs)
        if agreed is None:
            agreed = agree_counts([chunks, int(not share)], inputs["input_ids"].device)
        calls, share = agreed[0], share and not agreed[1]
        empty = self._empty_chunk(inputs)
        padding = torch.zeros((), device=inputs["input_ids"].device)
        # the model checkpoints its layers (TRL's default): checkpoint whole calls instead (see .prefix);
        # decided on the agreed share, so a rank without rows checkpoints its stand-in calls alike
        checkpointed = share and layer_checkpointing(self.accelerator.unwrap_model(model))
        recompute = not partitioned_by_zero3(model)  # see scoring.run_chunks
        if share and inputs["input_ids"].size(0) == 0:  # the other ranks' prompt encode, the same call
            padding, share = encode_prompt_stand_in(model, *empty[:2], checkpointed=checkpointed), False
        elif share:
            try:
                prompts = encode_whole_prompts(
                    model,
                    inputs["prefix_ids"],
                    inputs["prefix_mask"],
                    inputs["cont_ids"],
                    inputs["group_index"],
                    checkpointed=checkpointed,
                )
            except PrefixCacheError as error:  # a case the checks above missed: stay exact
                notice_fallback(str(error))
                share = False
        if share:
            score = score_after_prompts  # run_chunks pauses layer checkpointing where it checkpoints
            keys = ("group_index", "cont_ids", "cont_mask", "cont_labels")
            shared = (model, *prompts)
        else:
            score, keys = score_full_sequences, ("input_ids", "attention_mask", "labels")
            shared = (model,)
        tensors = [inputs[key] for key in keys]
        parts, more = run_chunks(
            score,
            shared,
            tensors,
            self.args.spectrum_chunk_size,
            calls,
            empty,
            checkpoint_all=checkpointed,
            recompute=recompute,
        )
        padding = padding + more
        if not parts:
            return padding.new_zeros(0), padding.new_zeros(()), padding.new_zeros(()), padding
        logps = torch.cat([part[0] for part in parts])
        entropy = torch.stack([part[1] for part in parts]).sum()
        top1 = torch.stack([part[2] for part in parts]).sum()
        return logps, entropy, top1, padding

    def _gem_losses(self, model, inputs, single, mode) -> tuple[torch.Tensor, ...]:
        """The GEM path: multi-reference groups scored as usual, K = 1 rows by :func:`gem_chunk`.

        Returns `_sequence_logps`'s triple (log-probs zero on the K = 1 rows, which the loss does
        not read) plus each group's summed GEM token loss ``[G]`` (zero on multi-reference groups).
        The K = 1 rows are forwarded in chunks of `spectrum_chunk_size` with the same
        checkpointing rule as `_sequence_logps`. Also logs `gem/nll`, their token-mean NLL.
        """
        rows = single[inputs["group_index"]]
        seq_logps = torch.zeros(rows.shape, device=rows.device)
        multi = select_groups(inputs, ~single)
        share, multi_chunks = self._prefix_plan(model, multi)
        gem_chunks = chunk_count(int(rows.sum()), self.args.spectrum_chunk_size)
        # one all-reduce: every rank makes the same calls on both paths, rows or not
        calls = agree_counts([multi_chunks, int(not share), gem_chunks], rows.device)
        multi_logps, entropy_sum, top1_sum, padding = self._padded_logps(model, multi, agreed=calls[:2])
        seq_logps = seq_logps.masked_scatter(~rows, multi_logps)
        unwrapped = self.accelerator.unwrap_model(model)
        unwrapped = unwrapped.get_base_model() if is_peft_model(unwrapped) else unwrapped
        if calls[2]:  # some rank has K = 1 rows (the same answer on every rank)
            check_plain_lm_head(unwrapped.config.get_text_config())
        # The same backbone and head TRL's fused forward uses (`base_model`, output embeddings).
        shared = (
            model,
            unwrapped.base_model,
            unwrapped.get_output_embeddings(),
            self.args.gem_beta,
            self.args.gem_h,
        )
        index = rows.nonzero()[:, 0]
        tensors = [inputs[key][index] for key in ("input_ids", "attention_mask", "labels")]
        recompute, score = not partitioned_by_zero3(model), gem_chunk
        if calls[2] and not recompute:  # ZeRO-3: the head as a module (see scoring)
            notice_once(GEM_FULL_LOGITS)
            score = gem_chunk_full_logits
        with self.accelerator.autocast():  # the head runs outside the model's autocast-wrapped forward
            parts, gem_padding = run_chunks(
                score,
                shared,
                tensors,
                self.args.spectrum_chunk_size,
                calls[2],
                self._empty_chunk(inputs),
                recompute=recompute,
                pad_with_score=True,
            )
        # the empty chunks' exact zero rides on the loss, so their backward runs on every rank
        per_group = seq_logps.new_zeros(single.shape) + padding + gem_padding
        nll = seq_logps.new_zeros(())
        if parts:
            per_group = per_group.index_add(0, inputs["group_index"][index], torch.cat([p[0] for p in parts]))
            entropy_sum = entropy_sum + sum(p[1] for p in parts)
            top1_sum = top1_sum + sum(p[2] for p in parts)
            nll = -sum(p[3] for p in parts).detach()
        # collectives on every rank, whether or not it has K = 1 rows
        gather = self.accelerator.gather_for_metrics
        tokens = gather((inputs["labels"][index][:, 1:] != -100).sum()).sum()
        nll = gather(nll.reshape(1)).sum()
        if tokens > 0:
            self._metrics[mode]["gem/nll"].append((nll / tokens).item())
        return seq_logps, entropy_sum, top1_sum, per_group

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mode = "train" if self.model.training else "eval"
        # GEM replaces the NLL of the K = 1 rows in training only (its reference evaluates with CE).
        gem = self.args.spectrum_loss_type == "gem" and mode == "train"
        # every rank makes the same model calls and collectives, whatever kinds of rows it holds
        parts, sft, stand_ins = uniform_parts(
            inputs, gem, self.data_collator, self._tokenizer.pad_token_id, self.accelerator.num_processes
        )
        if parts is None:  # TRL rows only, on every rank: SFTTrainer's loss, exactly
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        # Every part of a mixed batch shares one denominator: the groups' mean completion lengths
        # plus the TRL rows' loss tokens, so the batch loss is a token-weighted mean of both kinds.
        denominator = num_items_in_batch
        if denominator is None:
            denominator = sum(part["loss_denominator"].sum() for part in parts)
            denominator = denominator + (label_count(sft) if sft is not None else 0)
        # As SFTTrainer: a global count (num_items_in_batch) is rescaled by the number of processes.
        rescale = self.args.average_tokens_across_devices and num_items_in_batch is not None
        loss = sum(
            self._group_loss(model, part, mode, gem, denominator, rescale, num_items_in_batch)
            for part in parts
        )
        if sft is not None:
            # SFTTrainer gets the shared denominator as its count and rescales it as a global one;
            # undo that when the count is this process's own (eval).
            sft_loss = super().compute_loss(model, sft, num_items_in_batch=denominator)
            if stand_ins and mode == "train":  # TRL counted each stand-in's padding token
                self._total_train_tokens -= stand_ins
                self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
            if self.args.average_tokens_across_devices and num_items_in_batch is None:
                sft_loss = sft_loss / (self.accelerator.num_processes // self.get_tp_size())
            loss = loss + sft_loss
        if return_outputs:
            with torch.no_grad():
                logits, _ = eval_logits(model, inputs)
            return loss, CausalLMOutput(loss=loss, logits=logits)
        return loss

    def _group_loss(self, model, inputs, mode, gem, denominator, rescale, num_items_in_batch) -> torch.Tensor:
        """The spectrum loss of a batch of groups (K = 1 groups: NLL or GEM), summed over groups."""
        single = inputs["num_refs"] == 1
        unwrapped = self.accelerator.unwrap_model(model)
        with collect_aux_loss(unwrapped, self.aux_loss_enabled) as aux_losses:
            if gem:
                seq_logps, entropy_sum, top1_sum, gem_per_group = self._gem_losses(
                    model, inputs, single, mode
                )
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
        loss = per_group.sum() / torch.as_tensor(denominator).clamp(min=1e-8)
        # As in SFTTrainer: num_items_in_batch counts every rank's items while DDP averages grads.
        if rescale:
            loss = loss * (self.accelerator.num_processes // self.get_tp_size())
        if aux_losses:
            # SFTTrainer's MoE load-balancing term: the mean router loss of this batch's forwards.
            aux = torch.stack([value.float() for value in aux_losses]).mean()
            steps = self.current_gradient_accumulation_steps if num_items_in_batch is not None else 1
            loss = loss + self.router_aux_loss_coef * aux / steps
            self._metrics[mode]["aux_loss"].append(
                self.accelerator.gather_for_metrics(aux.detach()).mean().item()
            )
        self._log_metrics(mode, inputs, terms, single, entropy_sum, top1_sum)
        return loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        if "num_refs" not in inputs:  # TRL rows only
            return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys)
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs)
            if prediction_loss_only:
                return loss.detach(), None, None
            # The fused head never builds logits; compute_metrics asked for them, so build them here.
            logits, labels = eval_logits(model, inputs)
        return loss.detach(), logits, labels

    def _log_metrics(self, mode, inputs, terms, single, entropy_sum, top1_sum) -> None:
        self._total_train_tokens = log_group_metrics(
            self._metrics[mode],
            self.accelerator.gather_for_metrics,
            mode,
            inputs,
            terms,
            single,
            entropy_sum,
            top1_sum,
            self._total_train_tokens,
        )
