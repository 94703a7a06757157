"""``report.md`` of a ``data-build`` run: what was built, what was rejected and why, how valid."""

from __future__ import annotations

from typing import Any

__all__ = ["render_report"]

SHOWN_ROWS = 50


def _cell(text: Any, width: int = 60) -> str:
    flat = str(text).replace("\n", " ").replace("|", "\\|")
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _prompt(prompt: Any) -> str:
    return prompt if isinstance(prompt, str) else " / ".join(str(m.get("content", "")) for m in prompt)


def render_report(summary: dict[str, Any], records: list[dict[str, Any]]) -> str:
    """Markdown: the settings, the totals, validity against known valid sets, and per prompt its
    classes, target entropy and rejected answers (the first ``SHOWN_ROWS`` prompts; all of them are in
    summary.json and rejected.jsonl)."""
    lines = [
        "# data-build report",
        "",
        f"- teachers: {', '.join(summary['teachers'])}; {summary['samples']} samples per prompt and teacher "
        f"(temperature {summary['temperature']}, top-p {summary['top_p']})",
        f"- extraction: {summary['extract']}; weights: {summary['weights']} (temper {summary['temper']}, "
        f"max K {summary['max_k'] or 'none'})",
        f"- judge: {summary['judge'] or 'none'}; agreement: {summary['agreement'] or 'off'}",
        f"- prompts: {summary['prompts']}; rows written: {summary['rows']} "
        f"({summary['prompts'] - summary['rows']} prompts kept no answer)",
        f"- references per row: {summary['references_mean']:.2f}; target entropy: "
        f"{summary['entropy_bits_mean']:.3f} bits (mean over rows)",
        f"- rejected answers: {summary['rejected_answers']} {summary['rejected_by_reason'] or ''}; "
        f"unreadable samples: {summary['unreadable_samples']}",
        f"- wall time: {summary['wall_seconds']:.1f} s ({summary['seconds_per_100_prompts']:.1f} s per 100 "
        "prompts; cached stages count as nothing)",
    ]
    known = summary.get("known_valid_set")
    if known:
        lines += [
            "",
            "## Validity against the known valid sets",
            "",
            f"{known['rows']} rows list a valid set. Built references in it: "
            f"**{known['references_valid']:.3f}**; target mass on them: {known['mass_valid']:.3f} (mean per "
            f"row); teachers' readable answers in it: {known['samples_valid']:.3f}.",
        ]
    selection = summary.get("selection")
    if selection:
        lines += [
            "",
            "## Prismatic selection",
            "",
            f"{selection['selected']} rows kept of the target {selection['target']} "
            f"({selection['rows_built']} rows built from {selection['prompts_built']} prompts; proxy "
            f"{selection['proxy_model']}). G-Vendi of the selection **{selection['g_vendi_selected']:.3f}**, "
            f"of a random subset of the same size {selection['g_vendi_random_same_size']:.3f}, "
            f"of every built row {selection['g_vendi_all_built']:.3f}.",
            "",
            "| round | prompts built | rows built | candidates | k | largest cluster share | kept |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {i + 1} | {r['prompts_built']} | {r['rows_built']} | {r['candidates']} | {r['k']} | "
            f"{r['largest_share']:.2f} | {r['kept']} |"
            for i, r in enumerate(selection["rounds"])
        ]
    lines += [
        "",
        "## Per prompt",
        "",
        "| prompt | classes kept | entropy (bits) | references (weight) | rejected |",
        "|---|---|---|---|---|",
    ]
    for record in records[:SHOWN_ROWS]:
        pairs = zip(record["references"], record["weights"], strict=True)
        refs = ", ".join(f"{r} ({w:.2f})" for r, w in pairs)
        rejected = ", ".join(f"{r['answer']} ({'; '.join(r['reasons'])})" for r in record["rejected"])
        entropy = "" if record["entropy_bits"] is None else f"{record['entropy_bits']:.3f}"
        lines.append(
            f"| {_cell(_prompt(record['prompt']), 50)} | {len(record['references'])} | {entropy} | "
            f"{_cell(refs, 80)} | {_cell(rejected, 80)} |"
        )
    if len(records) > SHOWN_ROWS:
        lines.append(f"\n({len(records) - SHOWN_ROWS} more prompts in summary.json.)")
    return "\n".join(lines) + "\n"
