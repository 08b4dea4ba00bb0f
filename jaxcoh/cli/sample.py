"""``jaxcoh sample``: the joint posterior of one rotation-curve model (shared, per-galaxy and nuisance parameters,
optionally the intrinsic scatter) sampled with NUTS, resumable chunk by chunk."""

from __future__ import annotations

from .command import Command
from .common import (CUTS_OPTION, DATA_OPTIONS, LIKELIHOOD_OPTIONS, PRECISION_OPTIONS, VERBOSITY_OPTIONS,
                     curve_model_names, curve_settings, load_cut_data, log, out_option, progress)
from .options import ConfigError, Option
from .reporting import solver_progress
from .rundir import write_run

MASS_MATRICES = ("diagonal", "structured", "arrowhead", "dense")  # ("dense" is d x d: small problems only)

OPTIONS = (
    *DATA_OPTIONS, *PRECISION_OPTIONS, out_option("sample"),
    Option("model", "rar", "the model whose posterior is sampled", choices=curve_model_names),
    CUTS_OPTION, *LIKELIHOOD_OPTIONS,
    Option("chains", 4, "chains (side by side in threads, each a call of one compiled single-chain program)",
           type="int"),
    Option("warmup", 500, "warm-up steps per chain (step size and mass matrix adaptation, Stan's windows)",
           type="int"),
    Option("draws", 500, "draws per chain kept after warm-up", type="int"),
    Option("chunk_size", 100, "draws per chain stored at a time (an interrupted run resumes from the last chunk)",
           type="int"),
    Option("mass_matrix", "arrowhead", "inverse mass matrix adapted in warm-up: arrowhead (dense shared block, dense "
           "block per galaxy and their coupling, the warm-up starting from the Laplace approximation at the MAP; "
           "models without shared parameters use the diagonal), diagonal, structured (dense over the shared "
           "parameters, diagonal elsewhere) or dense", choices=MASS_MATRICES),
    Option("target_accept", 0.9, "target acceptance rate of the step-size adaptation (Stan's 0.8 let the arrowhead "
           "metric's larger steps diverge in 2 of 4 chains on SPARC's RAR)", type="float"),
    Option("max_tree_depth", 10, "NUTS tree depth limit (2^depth leapfrog steps)", type="int"),
    Option("seed", 0, "seed of the chains (and of the MAP's start design)", type="nonneg_int"),
    Option("start", "map", "where the chains start: map (the MAP fit, jittered) or prior (the fit's own start: declared "
           "inits and the nuisance priors' centres; no fit, longer way for the warm-up)", choices=("map", "prior")),
    Option("n_starts", 4, "starts of the shared parameters of the MAP fit the chains start from", type="int"),
    Option("galaxy_starts", None, "starts of every galaxy's parameters in the MAP fit (default: 32 for the halo "
           "profiles, 8 for the other models)", type="int"),
    *VERBOSITY_OPTIONS,
)


def validate(values: dict) -> None:
    if not 0.0 < values["target_accept"] < 1.0:
        raise ConfigError(f"'target_accept': {values['target_accept']} is not between 0 and 1")


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def format_summary(summary, info: dict) -> str:
    """The shared parameters' table and the sampler's facts, for the terminal."""
    cols = ("mean", "sd", "hdi_3%", "hdi_97%", "ess_bulk", "r_hat")
    lines = [(f"{info['model']}: {info['n_chains']} chains x {info['n_draws']} draws ({info['n_warmup']} warm-up), "
              f"{info['n_galaxies']} galaxies, {info['n_dims']} dimensions"),
             f"  {'parameter':<14}" + "".join(f"{c:>12}" for c in cols)]
    for _, row in summary.iterrows():
        lines.append(f"  {row['parameter']:<14}" + "".join(f"{_fmt(row[c]):>12}" for c in cols))
    w = info["wall_s"]
    lines.append(f"  divergences {info['divergences']} of {info['n_draws_total']}; mean tree depth "
                 f"{info['tree_depth']['mean']:.2f} (max {info['tree_depth']['max']}); step sizes "
                 + ", ".join(f"{x:.3g}" for x in info["step_size"]))
    lines.append(f"  wall time {w['total']:.1f} s (MAP fit {w.get('map_fit', 0):.1f} s, warm-up {w.get('warmup', 0):.1f} s, "
                 f"draws {w['sampling']:.1f} s; compiling {w['compile']:.1f} s of it)"
                 + (f"; {info['chunks_resumed']} chunk{'s' * (info['chunks_resumed'] != 1)} resumed"
                    if info["chunks_resumed"] else ""))
    return "\n".join(lines)


def run(values: dict) -> int:
    from ..curves.sampling import SampleSettings, sample_curves

    cat, report, data, _ = load_cut_data(values)
    settings = SampleSettings(n_chains=values["chains"], n_warmup=values["warmup"], n_draws=values["draws"],
                              chunk_size=values["chunk_size"], mass_matrix=values["mass_matrix"],
                              seed=values["seed"], target_accept=values["target_accept"],
                              max_tree_depth=values["max_tree_depth"], start=values["start"])
    fit_settings = curve_settings({**values, "solver": "auto", "errors": False})
    quiet = values["quiet"]
    with progress(settings.n_warmup + settings.n_draws, f"sampling {values['model']}", not quiet) as bar:
        def step(phase, n):
            done = n if phase == "warmup" else settings.n_warmup + n
            bar.update(done - bar.n)
            bar.set_description(f"{values['model']}: {'warm-up done' if phase == 'warmup' else 'drawing'}")
            if phase == "draws":
                log.debug(f"{n} of {settings.n_draws} draws per chain")

        with solver_progress(values, "MAP "):
            result = sample_curves(values["model"], cat, settings, fit_settings, out=values["out"], progress=step,
                                   key_extra={"data": {k: v for k, v in data.items() if k != "path"}})
    info = {**result.info, "cuts": values["cuts"], "sample": report, "data_kind": data["kind"]}
    from pathlib import Path

    from ..sampling.posterior import write_netcdf

    Path(values["out"]).mkdir(parents=True, exist_ok=True)
    write_netcdf(result.idata, Path(values["out"]) / "posterior.nc")  # first: config and provenance mark a run done
    out = write_run(values["out"], "sample", OPTIONS, values, dtype=str(values["dtype"]), data=data,
                    files={"summary.csv": result.summary, "per_galaxy_summary.csv": result.per_galaxy,
                           "posterior_curves.csv": result.curves, "sample.json": info})
    for w in result.warnings:
        log.warning(f"warning: {w}")
    if not quiet:
        print(format_summary(result.summary, info))
        print(f"\nwrote {out}/posterior.nc, summary.csv, per_galaxy_summary.csv, posterior_curves.csv, sample.json, "
              "config.toml and provenance.json")
    return 0


COMMAND = Command(
    name="sample",
    summary="Sample the joint posterior of one rotation-curve model with NUTS (shared, per-galaxy and nuisance "
            "parameters; --intrinsic-scatter adds sigma_int).",
    examples="examples:\n  jaxcoh sample --sparc ../shared/data/sparc --model rar --cuts standard --intrinsic-scatter "
             "--chains 4 --warmup 500 --draws 500 --out results/sample_rar\n"
             "  jaxcoh sample --model nfw --mass-matrix structured --draws 1000   # on the mock catalog\n"
             "  jaxcoh plot results/sample_rar                  # traces, corner plot, posterior curves",
    options=OPTIONS, run=run, validate=validate,
)
