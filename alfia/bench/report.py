"""What the benchmarks report: the summaries of the quick profile's measurements, the results as written (4
significant digits), and their markdown tables."""

from __future__ import annotations

import math

import numpy as np

from alfia.evaluation.metrics import average_precision


def inference_summary(main: dict, ref: dict, ours_on_ref: dict, floor: dict, y_test: np.ndarray) -> dict:
    """ALFIA's inference at the main size against the reference and the floor, with the test AUPRC of each path."""
    int8 = "int8" in main
    has_both = len(np.unique(y_test)) == 2
    ms = {k: main[k]["ms_per_sample"] for k in ("fp32", "int8") if k in main}
    # each path's AUPRC on the test split; none when the sample holds one outcome only
    auprc = {k: round(average_precision(y_test, main[k]["probs"][:len(y_test)]), 4) for k in ms} if has_both else {}
    summary = {
        "reference_infer_ms_per_sample": ref["ms_per_sample"],
        "alfia_infer_ms_per_sample": ms["fp32"],
        "inference_speedup": ref["ms_per_sample"] / ms["fp32"],
        "alfia_int8_infer_ms_per_sample": ms.get("int8"),
        "inference_speedup_int8": ref["ms_per_sample"] / ms["int8"] if int8 else None,
        "max_abs_prob_diff": float(np.abs(ours_on_ref["fp32"] - ref["probs"]).max()),
        "max_abs_prob_diff_int8": float(np.abs(ours_on_ref["int8"] - ref["probs"]).max()) if int8 else None,
        "test_auprc_fp32": auprc.get("fp32"),
        "test_auprc_int8": auprc.get("int8"),
        "test_stays": len(y_test),
        **floor,
        "alfia_vs_floor": ms["fp32"] / floor["floor_infer_ms_per_sample"],
        "reference_infer": {k: v for k, v in ref.items() if k != "probs"},
    }
    if int8 and has_both:
        summary["test_auprc_diff_int8"] = round(abs(summary["test_auprc_int8"] - summary["test_auprc_fp32"]), 4)
    return summary


def training_summary(train_info: dict, ref_train: dict, exact: dict | None) -> dict:
    """ALFIA's training speed against the reference's, and its quality against the exact (uncached) path."""
    return {
        "reference_train_samples_per_s": ref_train["samples_per_s"],
        "alfia_train_samples_per_s": train_info["samples_per_s"],
        "training_speedup": train_info["samples_per_s"] / ref_train["samples_per_s"],
        "alfia_train_epoch_samples_per_s": train_info["epoch_samples_per_s"],
        "training_speedup_epochs_only": (train_info["epoch_samples_per_s"] or 0) / ref_train["samples_per_s"],
        "reference_train": ref_train,
        "alfia_train": train_info,
        "exact_train": exact,
        "val_auprc_default": train_info["best_val_auprc"],
        "val_auprc_exact": exact["best_val_auprc"] if exact else None,
        "val_auprc_diff_vs_exact": abs(train_info["best_val_auprc"] - exact["best_val_auprc"]) if exact else None,
    }


def rounded(value):
    """Every float of ``value`` (nested in dicts and lists) to 4 significant digits, as the results are written."""
    if isinstance(value, float):
        return float(f"{value:.4g}") if math.isfinite(value) else value
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def quick_markdown(r: dict) -> str:
    """The tables of ``alfia bench`` (quick profile) from its results (:func:`alfia.bench.quick.run_bench`)."""
    m = r["machine"]

    def f(x, fmt="{:.1f}"):
        return "–" if x is None else fmt.format(x)

    ref_i, ref_t, al_t = r["reference_infer"], r["reference_train"], r["alfia_train"]
    main = next((e for e in r["alfia_infer_sizes"] if e["stays"] == r["stays"]), r["alfia_infer_sizes"][0])
    int8 = main.get("int8") or {}
    ours = f"alfia {r.get('precision', 'fp32')}"   # results written before --precision existed were fp32
    lines = [
        f"Machine: {m['cpu']}, {m['cpu_count']} CPUs, torch threads {m['torch_threads']}, "
        f"SIMD {' '.join(m['cpu_flags']) or '?'}" + (f", GPU {m['gpu']}" if m.get("gpu") else "") +
        f"; torch {m['torch']}; load average {m['load_average_start'][0]} at start, "
        f"{m['load_average_end'][0]} at end. Backbone {r['backbone']}" +
        (f"; device {r['device']}, reference fp32, {ours}." if "device" in r else "."),
        "",
        f"| | reference | {ours} | alfia int8 |",
        "| --- | ---: | ---: | ---: |",
        f"| inference ms/sample | {f(r['reference_infer_ms_per_sample'])} ({r['reference_stays']} stays, "
        f"padded to {ref_i['padded_tokens']}) | {f(r['alfia_infer_ms_per_sample'])} ({main['stays']} stays) | "
        f"{f(r.get('alfia_int8_infer_ms_per_sample'))} |",
        f"| inference speed-up | 1 | **{f(r['inference_speedup'])}x** | "
        f"**{f(r.get('inference_speedup_int8'))}x** |",
        f"| max abs prob diff vs reference (same weights) | 0 | {f(r['max_abs_prob_diff'], '{:.2g}')} | "
        f"{f(r.get('max_abs_prob_diff_int8'), '{:.2g}')} |",
        f"| test AUPRC ({r['test_stays']} stays) | | {f(r['test_auprc_fp32'], '{:.4f}')} | "
        f"{f(r.get('test_auprc_int8'), '{:.4f}')} |",
        f"| floor ms/sample (FLOPs / GEMM rate) | | {f(r['floor_infer_ms_per_sample'])} | "
        f"{f(r.get('floor_infer_ms_per_sample_int8'))} |",
        f"| peak RSS MB, inference | {f(ref_i['peak_rss_mb'], '{:.0f}')} | "
        f"{f(main['fp32']['peak_rss_mb'], '{:.0f}')} | {f(int8.get('peak_rss_mb'), '{:.0f}')} |",
        f"| training samples/s | {f(r['reference_train_samples_per_s'], '{:.2f}')} "
        f"({ref_t['steps']} steps x {ref_t['batch_size']}) | {f(r['alfia_train_samples_per_s'], '{:.2f}')} "
        f"end to end ({al_t['train_stays']} stays x {al_t['epochs']} epoch(s)); "
        f"{f(r['alfia_train_epoch_samples_per_s'], '{:.2f}')} in the epochs | |",
        f"| training speed-up | 1 | **{f(r['training_speedup'])}x** end to end; "
        f"{f(r['training_speedup_epochs_only'])}x epochs only | |",
        f"| peak RSS MB, training | {f(ref_t['peak_rss_mb'], '{:.0f}')} | {f(al_t['peak_rss_mb'], '{:.0f}')} | |",
        f"| best validation AUPRC: default path / exact path (no cache) | | "
        f"{f(r.get('val_auprc_default'), '{:.4f}')} / {f(r.get('val_auprc_exact'), '{:.4f}')} | |",
        "",
        f"FLOPs per sample {r['flops_per_sample'] / 1e9:.2f} G at a median of {r['median_tokens']} tokens; "
        f"measured GEMM {f(r['gemm_gflops_fp32'])} GFLOP/s fp32, {f(r.get('gemm_gflops_int8'))} GFLOP/s int8; "
        f"{ours} is {f(r['alfia_vs_floor'], '{:.2f}')}x its (fp32) floor.",
    ]
    lines += ["", "| stays | fp32 ms/sample | fp32 peak RSS MB | int8 ms/sample | int8 peak RSS MB |",
              "| ---: | ---: | ---: | ---: | ---: |"]
    for e in r["alfia_infer_sizes"]:
        q = e.get("int8") or {}
        lines.append(f"| {e['stays']} | {f(e['fp32']['ms_per_sample'])} | {f(e['fp32']['peak_rss_mb'], '{:.0f}')}"
                     f" | {f(q.get('ms_per_sample'))} | {f(q.get('peak_rss_mb'), '{:.0f}')} |")
    return "\n".join(lines) + "\n"


def paper_markdown(r: dict) -> str:
    """The table of ``alfia bench --profile paper`` from its results (:func:`alfia.bench.paper.run_paper_bench`)."""
    def f(x, fmt="{:.1f}"):
        return "–" if x is None else fmt.format(x)

    def share(part: dict) -> str:
        tflops = f(part["tflops_per_s"], "{:.3g}")
        return tflops if part["share_of_peak"] is None else f"{tflops} ({100 * part['share_of_peak']:.0f}%)"

    s, gpu, m = r["sizes"], r["gpu"], r["machine"]
    if gpu:
        where = (f"GPU {gpu['name']} ({r['device']}, compute capability {gpu['capability']}, {gpu['memory_gib']} GiB, "
                 f"CUDA {gpu['cuda']}); ")
        peaks = gpu["peak_tflops"]
        where += (f"dense peak TFLOP/s ({gpu['datasheet_name']} datasheet): " +
                  ", ".join(f"{k} {v}" for k, v in peaks.items()) if peaks else "not in the datasheet table: no share "
                  "of peak")
    else:
        where = f"CPU {m['cpu']} ({m['cpu_count']} cores, torch threads {m['torch_threads']}): no share of peak"
    lines = [
        f"{where}; torch {m['torch']}. " + ("**Tiny smoke run, not a measurement.** " if r["tiny"] else "") +
        f"Batch {s['batch_size']} x {s['tokens']} tokens, {s['steps']} timed step(s) after {s['warmup_steps']} "
        f"warm-up; set A: {s['set_a_stays']} stays at their own lengths; {r['seconds']:.0f} s in all.",
        "",
        f"| backbone | precision | train stays/s | train TFLOP/step | train TFLOP/s (% of peak) | train peak GPU MB | "
        f"infer ms/stay at {s['tokens']} | infer TFLOP/s (% of peak) | infer peak GPU MB | "
        f"set-A ms/stay (median tokens) | set-A peak GPU MB |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in r["rows"]:
        precision = row["precision"] + (" + checkpointing" if row["gradient_checkpointing"] else "")
        if row["status"] != "ok":
            lines.append(f"| {row['backbone']} | {precision} | skipped: {row['reason']} |" + " |" * 8)
            continue
        t, i, a = row["train"], row["infer"], row["set_a"]
        lines.append(f"| {row['backbone']} | {precision} | {f(t['stays_per_s'])} | "
                     f"{f(t['flops_per_step'] / 1e12, '{:.3g}')} | {share(t)} | {f(t['peak_gpu_mb'], '{:.0f}')} | "
                     f"{f(i['ms_per_stay'], '{:.2f}')} | {share(i)} | {f(i['peak_gpu_mb'], '{:.0f}')} | "
                     f"{f(a['ms_per_stay'], '{:.2f}')} ({a['median_tokens']:.0f}) | {f(a['peak_gpu_mb'], '{:.0f}')} |")
    lines += ["", f"Anchor: {r['paper_anchor']}."]
    if r.get("trainer_loop"):
        lines += ["", *trainer_loop_markdown(r["trainer_loop"])]
    if r.get("paper_cost"):
        lines += ["", describe_cost(r["paper_cost"])]
    return "\n".join(lines) + "\n"


def trainer_loop_markdown(loop: dict) -> list[str]:
    """The trainer-loop table (:func:`alfia.bench.paper.trainer_loop_rows`): ``alfia train``'s own loop, one row per
    precision."""
    def f(x, fmt="{:.1f}"):
        return "–" if x is None else fmt.format(x)

    rows = loop["rows"]
    first = rows[0] if rows else {}
    lines = [f"Trainer loop: `alfia train`'s own loop (the paper profile's mechanics: LoRA on every layer, fusion, "
             f"head; batch {first.get('batch_size', '?')} padded per batch, the DataLoader) on the {loop['backbone']}, "
             f"{first.get('train_stays', '?')} set-A training stays ({first.get('steps_per_epoch', '?')} steps) x 2 "
             "epochs; the warm epoch timed, its validation subtracted; backward/forward = (the loop - a forward "
             "of the same stays) / that forward.",
             "",
             "| precision | trainer stays/s | backward/forward | warm epoch s | its validation s | forward s | "
             "peak GPU MB |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        if row["status"] != "ok":
            lines.append(f"| {row['precision']} | skipped: {row['reason']} |" + " |" * 5)
            continue
        lines.append(f"| {row['precision']} | {f(row['stays_per_s'])} | {f(row['backward_over_forward'], '{:.2f}')}"
                     f" | {f(row['epoch_s'], '{:.1f}')} | {f(row['validation_s'], '{:.2f}')} | "
                     f"{f(row['forward_s'], '{:.2f}')} | {f(row.get('peak_gpu_mb'), '{:.0f}')} |")
    return lines


def describe_cost(cost: dict) -> str:
    """One paragraph: the measured backward/forward ratio and the paper's setting's cost computed from it."""
    setting = (f"{cost['backbone']}, {cost['parameters'] / 1e6:.0f} M parameters, {cost['tokens_per_stay']} tokens "
               f"per stay ({cost['forward_tflop_per_stay']:.3g} TFLOP forward), {cost['train_stays']:,} training "
               f"stays of {cost['stays']:,}, up to {cost['epochs']} epochs")
    assumed = cost["assumed"]
    before = (f"the fixed {1 + assumed['backward_over_forward']:.0f}x, backward = "
              f"{assumed['backward_over_forward']:.0f}x forward, gave {assumed['pflop_per_epoch']:.3g} PFLOP per epoch")
    head = cost["headline"]
    if head is None:
        return (f"Backward/forward ratio: not measured (no precision ran a warm epoch long enough to time: the run "
                f"history's resolution is 0.1 s). Cost of the paper's setting ({setting}): not computed ({before}).")
    ratios = ", ".join(f"{e['precision']} {e['backward_over_forward']:.2f}" for e in cost["estimates"])
    line = (f"Backward/forward ratio, measured in alfia train's loop on the {cost['measured_on']}: {ratios}. Cost "
            f"of the paper's setting ({setting}) from the {head['precision']} ratio: "
            f"{cost['forward_tflop_per_stay']:.3g} x (1 + {head['backward_over_forward']:.2f}) = "
            f"{head['train_tflop_per_stay']:.3g} TFLOP per training stay, {head['pflop_per_epoch']:.3g} PFLOP per "
            f"epoch ({before})")
    if head["hours_per_epoch"] is not None:
        line += (f"; at the trainer loop's measured {head['precision']} rate on this device, "
                 f"{head['hours_per_epoch']:.3g} h per epoch, {head['hours_all_epochs']:.3g} h for {cost['epochs']} "
                 "epochs (validation not included)")
    return line + "."
