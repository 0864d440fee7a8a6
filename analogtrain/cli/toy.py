"""``analogtrain program --task constant-gradient``: the Fig. 3 toy (traces of W and A)."""

from __future__ import annotations

import click

from analogtrain import report
from analogtrain.config.algorithm import canonical_algorithm
from analogtrain.experiments.toy import ALGOS, run_toy
from analogtrain.cli.options import load_device_sources
from analogtrain.cli.parsing import comma_list


#: program options the toy does not use (it has its own fixed 5x5 setting)
_NOT_FOR_TOY = ("n_states", "sigma_r", "sigma_r_arrays", "seeds", "lr", "size", "sweeps", "zip_sweeps", "algo_sets",
                "w_sp_corrected", "io_name", "trace_every", "jobs", "dtype", "count_pulses")


def run_toy_command(ctx, algorithm, preset, config_file, device_config_file, sets, seed, steps, as_json, out_dir,
                    plot_file, print_config):
    from analogtrain.errors import ConfigError

    given = [p for p in _NOT_FOR_TOY if ctx.get_parameter_source(p) is not None
             and ctx.get_parameter_source(p).name == "COMMANDLINE"]
    if given:
        raise ConfigError(f"--task constant-gradient: option(s) {', '.join('--' + g.replace('_', '-') for g in given)} "
                          "do not apply (the toy is a fixed 5x5 experiment; it takes --algorithm, the device "
                          "options, --steps and --seed)")
    algos = comma_list(algorithm, "--algorithm", canonical_algorithm) if algorithm else ALGOS
    bad = [a for a in algos if a not in ALGOS]
    if bad:
        from analogtrain.errors import ConfigError

        raise ConfigError(f"--algorithm: the constant-gradient task runs ttv2, c-ttv2, agad (got {', '.join(bad)})")
    dev_preset, values, pairs = load_device_sources(preset, config_file, device_config_file, sets)
    steps = steps or 3000
    resolved = {"program": {"task": "constant-gradient", "steps": steps, "algorithm": list(algos), "seed": seed,
                            "record_every": 25, "reference_offset": -0.8, "gradient": 0.2, "gradient_noise": 1.0,
                            "lr": 0.02},
                "device_source": {"preset": dev_preset, "file": values, "set": dict(pairs)}}
    if print_config:
        click.echo(report.to_toml(report.to_jsonable(resolved), header="analogtrain program (toy): resolved config"))
        return
    report.prepare_outputs(out_dir, plot_file)
    res = run_toy(steps=steps, seed=seed, preset=dev_preset, values=values, sets=pairs, algorithms=algos,
                  grad=resolved["program"]["gradient"], noise=resolved["program"]["gradient_noise"],
                  lr=resolved["program"]["lr"])
    out = report.provenance("program", resolved, seed)
    out.update({"task": "constant-gradient", "expected_direction": "W decreases",
                "results": [{"replica": lab, "final_w_mean": float(res.w_mean[i, -1]),
                             "final_a_mean": float(res.a_mean[i, -1]),
                             "direction_correct": bool(res.w_mean[i, -1] < res.w_mean[i, 0] - 1e-9)}
                            for i, lab in enumerate(res.labels)],
                "trace_steps": res.steps.tolist()})
    if out_dir is not None:
        rows = [[lab, int(s), float(res.w_mean[i, k]), float(res.a_mean[i, k])]
                for i, lab in enumerate(res.labels) for k, s in enumerate(res.steps)]
        report.write_csv(out_dir / "traces.csv", ["replica", "step", "w_mean", "a_mean"], rows)
        report.write_json(out_dir / "summary.json", {**out, "w_mean": res.w_mean, "a_mean": res.a_mean})
    if plot_file is not None:
        plt = report.require_matplotlib()
        fig, axes = plt.subplots(2, len(algos), figsize=(4 * len(algos), 6), sharex=True, squeeze=False)
        for i, lab in enumerate(res.labels):
            col = algos.index(lab.split("+")[0])
            style = "--" if "offset" in lab else "-"
            axes[0, col].plot(res.steps, res.w_mean[i], style, label=lab)
            axes[1, col].plot(res.steps, res.a_mean[i], style, label=lab)
            axes[0, col].set_title(lab.split("+")[0])
        for ax in axes[0]:
            ax.set_ylabel("mean W")
            ax.legend(fontsize=7)
        for ax in axes[1]:
            ax.set_ylabel("mean A (read)")
            ax.set_xlabel("update")
        fig.tight_layout()
        with report.atomic_path(plot_file) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
        plt.close(fig)
    if as_json:
        click.echo(report.dumps(out))
    else:
        rows = [[r["replica"], f"{r['final_w_mean']:.3f}", f"{r['final_a_mean']:.3f}",
                 "yes" if r["direction_correct"] else "NO"] for r in out["results"]]
        click.echo("constant gradient: the correct W moves down; offset = reference 0.8 below A's SP\n"
                   + report.table(rows, ["replica", f"mean W after {steps}", "mean A (read)", "W moved down"]))
