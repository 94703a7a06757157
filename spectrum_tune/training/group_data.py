"""How SpectrumTrainer prepares a dataset: multi-reference and in-context rows become tokenised
groups, TRL's single-target rows go through SFTTrainer's own preparation, and a dataset holding both
is joined (see :mod:`.dropin`). A mixin placed before ``trl.SFTTrainer`` in the trainer's bases, so
``super()`` here is SFTTrainer's preparation.
"""

from __future__ import annotations

from datasets import IterableDataset
from trl.data_utils import get_dataset_column_names

from .data import (
    FORMAT_COLUMN,
    SOURCE_COLUMN,
    DataError,
    present_fields,
    row_kind,
    rows_to_dataset,
    validate_incontext_row,
    validate_row,
)
from .dropin import GROUP_COLUMNS, SINGLE_COLUMNS, join_datasets, tokenize_row
from .formats import split_rows

__all__ = ["TOKENIZED_COLUMNS", "GroupDatasetMixin"]

TOKENIZED_COLUMNS = GROUP_COLUMNS


class GroupDatasetMixin:
    """The dataset-preparation overrides of :class:`~spectrum_tune.training.trainer.SpectrumTrainer`."""

    def _prepare_dataset(self, dataset, processing_class, args, packing, formatting_func, dataset_name):
        columns = get_dataset_column_names(dataset)
        if set(TOKENIZED_COLUMNS) <= set(columns):
            return dataset  # already tokenised groups (or a dataset this method prepared)
        if formatting_func is not None or "input_ids" in columns:
            # Formatted or pre-tokenised rows are single-target by construction: TRL's own path.
            if "references" in columns or "outputs" in columns:
                raise ValueError(
                    "formatting_func and pre-tokenised input_ids apply to single-target rows; this dataset "
                    "also has multi-reference or in-context rows"
                )
            return super()._prepare_dataset(
                dataset, processing_class, args, packing, formatting_func, dataset_name
            )
        if isinstance(dataset, IterableDataset):
            return self._prepare_stream(dataset, processing_class, args, packing, dataset_name)
        if {"references", SOURCE_COLUMN, FORMAT_COLUMN} <= set(columns) and set(dataset[FORMAT_COLUMN]) <= {
            "multiref",
            "incontext",
        }:
            # Rows load_multiref already validated (the CLI's path): tokenise them as they are.
            self._check_groups_allowed(args, packing, dataset[0][SOURCE_COLUMN])
            groups = self._tokenize_groups(dataset, args, dataset_name)
            return groups.shuffle(seed=args.seed) if args.shuffle_dataset else groups
        text_field = args.dataset_text_field
        spectrum, single = split_rows(
            ((f"{dataset_name} dataset row {i + 1}", row) for i, row in enumerate(dataset)), text_field
        )
        if not spectrum:
            return super()._prepare_dataset(dataset, processing_class, args, packing, None, dataset_name)
        self._check_groups_allowed(args, packing, spectrum[0]["source"])
        groups = self._tokenize_groups(rows_to_dataset(spectrum), args, dataset_name)
        if not single:
            return groups.shuffle(seed=args.seed) if args.shuffle_dataset else groups
        rows = dataset.select(single)
        unused = [c for c in rows.column_names if all(value is None for value in rows[c])]
        rows = rows.remove_columns(unused)
        if args.completion_only_loss is None:
            # TRL decides from the first row, which may be a spectrum row here: decide from a TRL row.
            first = rows[0]
            self.completion_only_loss = "prompt" in first and "completion" in first
        rows = super()._prepare_dataset(rows, processing_class, args, packing, None, dataset_name)
        joined = join_datasets(groups, rows)
        return joined.shuffle(seed=args.seed) if args.shuffle_dataset else joined

    def _check_groups_allowed(self, args, packing: bool, where: str) -> None:
        if packing or self.padding_free:
            raise DataError(
                where,
                "a multi-reference row cannot be packed: packing and padding_free concatenate sequences, "
                "which would split the group's references (scored together for its KL) across packed rows; "
                "set packing=False and padding_free=False, or train the single-target rows alone",
            )

    def _tokenize_groups(self, dataset, args, dataset_name):
        tokenizer = self._tokenizer
        if any(fmt == "incontext" for fmt in dataset[FORMAT_COLUMN]) and not tokenizer.chat_template:
            raise ValueError("in-context rows need a tokenizer with a chat template")
        return dataset.map(
            tokenize_row,
            fn_kwargs={"tokenizer": tokenizer, "max_length": args.max_length},
            remove_columns=[c for c in dataset.column_names if c not in TOKENIZED_COLUMNS] or None,
            desc=f"Tokenizing {dataset_name} groups",
        )

    def _prepare_stream(self, dataset, processing_class, args, packing, dataset_name):
        """An IterableDataset: TRL prepares a stream of TRL rows; spectrum rows are tokenised row by row.

        A stream is not grouped (that needs every row): prompt/completion rows stay single-target.
        """
        text_field = args.dataset_text_field
        first = next(iter(dataset))
        if row_kind(first, f"{dataset_name} stream row 1", text_field) == "single":
            return super()._prepare_dataset(dataset, processing_class, args, packing, None, dataset_name)
        self._check_groups_allowed(args, packing, f"{dataset_name} stream row 1")
        tokenizer = self._tokenizer

        def prepare(row, index):
            where = f"{dataset_name} stream row {index + 1}"
            kind = row_kind(row, where, text_field)
            if kind == "single":
                raise DataError(
                    where,
                    "a single-target TRL row in a stream of multi-reference rows; a stream holds "
                    "one kind (use a map-style Dataset to mix them)",
                )
            row = present_fields(row)
            valid = validate_row(row, where) if kind == "multiref" else validate_incontext_row(row, where)
            return tokenize_row(valid, tokenizer, args.max_length)

        columns = get_dataset_column_names(dataset)
        return dataset.map(prepare, with_indices=True, remove_columns=columns)

    def _set_signature_columns_if_needed(self):
        if self._signature_columns is None:
            # Group columns for spectrum rows, TRL's (with packing's seq_lengths) for single-target rows.
            self._signature_columns = [*TOKENIZED_COLUMNS, *SINGLE_COLUMNS, "seq_lengths"]
