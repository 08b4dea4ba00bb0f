"""The benchmarks' tables: one line per benchmark for the terminal, and ``benchmarks/RESULTS.md`` from a run."""

from __future__ import annotations

from .b6_halos import format_b6
from .baselines import kernel as bl_kernel


def _met(met: bool | None, yes: str, no: str) -> str:
    return "n/a" if met is None else yes if met else no


def format_results(res: dict) -> str:
    lines = [f"{'id':<4}{'baseline s':>12}{'jaxcoh s':>11}{'compile s':>11}{'ratio':>10}{'target':>8}  met"]
    for k, b in res["benchmarks"].items():
        if "skipped" in b:
            lines.append(f"{k:<4}  skipped: {b['skipped']}")
            continue
        lines.append(f"{k:<4}{b['baseline_s']:>12.4g}{b['jaxcoh_s']:>11.4g}{b['compile_s']:>11.3g}"
                     f"{b['ratio']:>10.3g}{b['target']:>8g}  {_met(b['met'], 'yes', 'NO')}")
    return "\n".join(lines)


def results_markdown(res: dict, command: str) -> str:
    """``benchmarks/RESULTS.md``: the table of a run, the command that made it, the machine, the details."""
    m = res["machine"]
    lines = ["# Benchmark results", "",
             f"Made by `{command}` ({res['mode']} mode, data: {res['data']}, {res['dtype']}).", "",
             f"Machine: {m['processor']}, {m['cpu_count']} cores, {m['platform']}; JAX backend {m['jax_backend']} "
             f"({m['device']} x{m['device_count']}); versions " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
             "", "| id | workload | baseline s | jaxcoh s (warm) | compile s | ratio | target | met |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    names = {"B1": "seed's table end to end", "B2": "1000 bootstrap refits", "B3": "4096-point hyperparameter grid",
             "B4": "kernel loss, 10^3..10^6 galaxies x 64 points", "B5": "joint MAP fit with nuisance (SPARC)",
             "B6": "halo catalogue, 12 models x every SPARC galaxy",
             "B7": "NUTS ESS/s of g_dagger vs a numpyro model (SPARC RAR)"}
    for k, b in res["benchmarks"].items():
        if "skipped" in b:
            lines.append(f"| {k} | {names[k]} | skipped: {b['skipped']} | | | | | |")
            continue
        label = {"B2": f"{b.get('n_boot')} bootstrap refits", "B3": f"{b.get('n_points')}-point hyperparameter grid"}
        lines.append(f"| {k} | {label.get(k, names[k])} | {b['baseline_s']:.4g} | {b['jaxcoh_s']:.4g} | {b['compile_s']:.3g} | "
                     f"{b['ratio']:.3g}x | {b['target']:g}x | {_met(b['met'], 'yes', 'no')} |")
    lines += ["", "Baselines and how each ratio is formed:", ""]
    for k, b in res["benchmarks"].items():
        if "skipped" not in b:
            lines.append(f"- {k}: baseline {b.get('baseline')}; jaxcoh {b.get('jaxcoh', 'jitted, vmapped')}.")
    b1 = res["benchmarks"].get("B1", {})
    if "cached_process_s" in b1:
        lines.append(f"- B1 in fresh processes (interpreter start-up and imports included, medians): first-ever jaxcoh run "
                     f"{b1['first_ever_process_s']:.2f} s; with JAX's persistent compilation cache filled "
                     f"{b1['cached_process_s']:.2f} s against {b1['baseline_process_s']:.2f} s for the baseline script "
                     f"in a fresh process: {b1['cached_process_ratio']:.2f}x (target under 4x: "
                     f"{'met' if b1['cached_process_met'] else 'not met'}; "
                     f"{b1['cached_process_ratio_vs_in_process_baseline']:.1f}x the baseline's in-process time).")
    b4 = res["benchmarks"].get("B4", {})
    if "sizes" in b4:
        lines += ["", "B4 by size (float32). In a fit: the objective on data prepared once (``joint.prepare``, timed "
                  "apart like compilation); one-off: from the raw catalog, preparation included.", "",
                  "| galaxies | points | numpy fwd s | prepare s | jaxcoh fwd s | jaxcoh value+grad s | "
                  "one-off value+grad s | fwd ratio | value+grad ratio (one-off) | ns/point (value+grad) | "
                  "loop ratio: value+grad, one-off (forward) | peak RSS GiB |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in b4["sizes"]:
            loop = (f"{r['loop_ratio_value_grad']:.0f}x, {r['loop_ratio_value_grad_one_off']:.0f}x "
                    f"({r['loop_ratio_forward']:.0f}x)" if "loop_ratio_forward" in r else "")
            lines.append(f"| {r['galaxies']} | {r['points']} | {r['numpy_forward_s']:.4g} | {r['prepare_s']:.4g} | "
                         f"{r['jaxcoh_forward_s']:.4g} | {r['jaxcoh_value_grad_s']:.4g} | "
                         f"{r['jaxcoh_value_grad_one_off_s']:.4g} | {r['forward_ratio']:.2f}x | "
                         f"{r['value_grad_ratio']:.2f}x ({r['value_grad_ratio_one_off']:.2f}x) | "
                         f"{r['ns_per_point_value_grad']:.1f} | {loop} | {r['peak_rss_gib_so_far']:.2f} |")
        last = b4["sizes"][-1]
        lines.append(f"\nB4 at {last['galaxies']} galaxies: forward {b4['ratio']:.2f}x the numpy forward pass (target "
                     f"{b4['target']:g}x: {'met' if b4['met'] else 'not met'}), value and gradient "
                     f"{b4['value_grad_ratio']:.2f}x it (target {b4['value_grad_target']:g}x: "
                     f"{'met' if b4['value_grad_met'] else 'not met'}); one-off forward "
                     f"{last['forward_ratio_one_off']:.2f}x and value and gradient {last['value_grad_ratio_one_off']:.2f}x "
                     f"(targets {'met' if b4['one_off_met'] else 'not met'}); peak RSS of the benchmark process "
                     f"{b4['peak_rss_gib']:.2f} GiB (numpy baseline included).")
        ns = b4["cost_per_point_ns"]
        lines.append(f"Cost per point of the value and gradient from {b4['sizes'][0]['points']} to {last['points']} points: "
                     + ", ".join(f"{v:.1f}" for v in ns) + f" ns (largest / smallest {max(ns) / min(ns):.2f}; it does not "
                     "grow with the size: the cost is linear in the number of points, or better where fixed per-call "
                     "costs are spread over more points).")
        if "jaxcoh_process_peak_rss_gib" in b4:
            lines.append(f"jaxcoh alone (mock generation, preparation, value and gradient at {last['galaxies']} "
                         f"galaxies, in a fresh process): peak RSS {b4['jaxcoh_process_peak_rss_gib']:.2f} GiB (target "
                         f"under {b4['memory_target_gib']:g} GiB: {'met' if b4['memory_met'] else 'not met'}).")
        if "loop_ratio" in b4:
            lines.append(f"Against the per-galaxy Python loop at {b4['loop_galaxies']} galaxies (float64, gradient by "
                         f"forward differences: {len(bl_kernel.SHARED) + 1} loop passes): value and gradient in a fit "
                         f"{b4['loop_ratio']:.0f}x (target {b4['loop_target']:g}x: "
                         f"{'met' if b4['loop_met'] else 'not met'}), one-off {b4['loop_ratio_one_off']:.0f}x "
                         f"({'met' if b4['loop_met_one_off'] else 'not met'}); forward alone "
                         f"{b4['loop_ratio_forward']:.0f}x.")
    for k in ("B2", "B3"):
        b = res["benchmarks"].get(k, {})
        if "fraction_converged" in b:
            lines.append(f"\n{k}: fraction of {'replicates' if k == 'B2' else 'grid points'} converged "
                         f"{b['fraction_converged']:.3f}.")
    b5 = res["benchmarks"].get("B5", {})
    if "default_settings" in b5:
        d = b5["default_settings"]
        lines.append(f"\nB5: jaxcoh's objective {b5['jaxcoh_objective']:.6f} against the baseline's "
                     f"{b5['baseline_cost']:.6f}; with jaxcoh's default settings ({d['settings']}) "
                     f"{d['warm_s']:.3g} s warm + {d['compile_s']:.3g} s compile, objective {d['objective']:.6f}, "
                     f"{d['ratio']:.2f}x the baseline.")
        if "dense_baseline_s" in b5:
            lines.append(f"B5 against the dense finite-difference baseline: {b5['dense_baseline_s']:.3g} s, "
                         f"ratio {b5['ratio_vs_dense_baseline']:.1f}x.")
    b6 = res["benchmarks"].get("B6", {})
    if "baseline_subset_s" in b6:
        lines.append("\n" + format_b6(b6))
    return "\n".join(lines) + "\n"
