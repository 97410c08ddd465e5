"""The model card (``README.md``) of a pretrained model, rendered from its ``config.json``.

Everything on the card comes from the config, so the card and the numbers it quotes cannot drift apart:
what the model maps, the data recipe and seeds, how and where it was trained (the command, epochs, wall
time, device), its test metrics on freshly generated trajectories, the command that reproduces them, and
its limits.

For the Hugging Face Hub (``render_card(config, front_matter=True)``, written by
:func:`sciml.zoo.remote.save_pretrained`) the card starts with the Hub's YAML metadata: ``library_name``,
``license``, ``tags``, ``datasets`` (the recipe) and the test metrics as ``model-index``. The cards of the
committed zoo are rendered without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DEFAULT_LICENSE = "mit"
"""The license of the weights when ``config.json`` names none: the package's own."""


ERRORS = {
    "l2": ("rel L2", "relative_l2"),
    "h1": ("rel H1", "relative_h1"),
    "h-1": ("rel H^-1", "relative_h-1"),
}
"""The card's test errors: key in ``metrics``, label on the card, metric type in the Hub's model-index."""


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _task_line(config: dict[str, Any]) -> str:
    task = config["task"]
    fields = ", ".join(task.get("fields") or config["context"].get("field_names", []))
    if task["mode"] == "pairs":
        return f"input/output pairs of the data file: {fields} -> the paired output"
    if task["mode"] == "window":
        return (
            f"autoregressive: the last {task['t_in']} frames of {fields} -> the next {task['t_out']} "
            f"(windows every {task.get('stride', 1)} frame(s)); rolled out by feeding predictions back"
        )
    return f"{fields} at frame {task['input_time']} -> {fields} at frame {task['output_time']}"


def _recipe_line(recipe: dict[str, Any]) -> str:
    s, o = recipe["solver"], recipe["output"]
    d = 3 if recipe.get("hit") else 2  # a 3-D (forced HIT) recipe or a 2-D one
    return (
        f"`{recipe['name']}`: nu = {s['viscosity']:g}, forcing {s['forcing']}, {s['resolution']}^{d} "
        f"{s['stepper']} solve at dt = {s['dt']:g}, stored at {o.get('resolution') or s['resolution']}^{d}, "
        f"one frame every {o['record_every']:g} up to t = {o['t_final']:g}; {recipe['n_trajectories']} "
        f"trajectories, seed {recipe['seed']}"
    )


def _run_test_lines(run_test: dict[str, Any], dims: int = 2, flow_recipe: bool = True) -> list[str]:
    """The training run's own test split, at its resolution and zero-shot at others (if evaluated)."""
    if not run_test:
        return []
    held_out = "the last samples of its data"
    if flow_recipe:
        held_out = "the last trajectories of the training recipe"
    zero_shot = ""
    if len(run_test) > 1:
        zero_shot = " and zero-shot at finer ones (the test trajectories solved again on that grid)"
    lines = [
        "",
        f"The training run's held-out test split ({held_out}), at the training resolution{zero_shot}:",
        "",
        "| resolution | rel L2 | rel H1 | rel H^-1 | samples |",
        "|---|---|---|---|---|",
    ]
    for res, m in sorted(run_test.items(), key=lambda kv: int(kv[0])):
        lines.append(
            f"| {res}^{dims} | {_fmt(m['l2']['mean'])} | {_fmt(m['h1']['mean'])} | {_fmt(m['h-1']['mean'])} "
            f"| {m.get('n_samples', '-')} |"
        )
    return lines


def render_card(config: dict[str, Any], *, front_matter: bool = False, repo_id: str | None = None) -> str:
    """Markdown model card of a pretrained model.

    ``front_matter=True`` starts it with the Hugging Face Hub's YAML metadata (:func:`hub_metadata`);
    ``repo_id`` (``"org/name"``) makes its usage example load the model from that Hub repository.
    """
    dataset = config.get("dataset", {})
    flow_recipe = "recipe" in dataset  # a Navier-Stokes recipe (its test set can be regenerated)
    lines = [
        *_usage_lines(config, repo_id),
        "",
        *_model_lines(config),
        "",
        *_data_lines(config),
        "",
        *_training_lines(config.get("training", {})),
        "",
        *_test_metric_lines(
            config["name"] if repo_id is None else f"hf://{repo_id}",
            config.get("metrics"),
            other_recipe=not flow_recipe and "recipe_file" in dataset,
        ),
        *_run_test_lines(
            config.get("training", {}).get("run_test", {}), len(config["context"]["grid_shape"]), flow_recipe
        ),
        "",
        *(LIMITS if flow_recipe else OTHER_DATA_LIMITS),
        "",
    ]
    card = "\n".join(lines)
    return front_matter_text(config) + card if front_matter else card


def _usage_lines(config: dict[str, Any], repo_id: str | None = None) -> list[str]:
    """The title, the description and how to load and call the model (from the zoo or ``repo_id``)."""
    name, context = config["name"], config["context"]
    if repo_id is None:
        load_line = f'model = sciml.zoo.load("{name}")  # offline; SHA-256 checked'
    else:
        load_line = f'model = sciml.zoo.from_pretrained("{repo_id}")  # SHA-256 of every file checked'
    return [
        f"# {name}",
        "",
        config.get("description") or f"A `{config['model']['name']}` operator trained with sciml.",
        "",
        "```python",
        "import sciml.zoo",
        load_line,
        f"y = model(x)  # x: [batch, {context['in_channels']}, "
        + ", ".join(str(n) for n in context["grid_shape"])
        + "] in physical units",
        "```",
    ]


def _model_lines(config: dict[str, Any]) -> list[str]:
    """The family and its arguments, the size and checksum of the weights, the task."""
    model, weights = config["model"], config.get("weights", {})
    return [
        "## Model",
        f"- family: `{model['name']}` with arguments `{model.get('kwargs', {})}`",
        f"- parameters: {_fmt(weights.get('params'))} (complex counted twice); weights "
        f"{_fmt((weights.get('bytes') or 0) / 2**20, 3)} MiB, SHA-256 `{weights.get('sha256', '-')}`",
        *_half_precision_lines(config),
        f"- task: {_task_line(config)}",
        _normalization_line(config.get("normalization", {})),
        _export_line(config),
    ]


def _normalization_line(stats: dict[str, Any]) -> str:
    """Whether the model normalizes its inputs and outputs (identity statistics: it does not)."""

    def flat(values: Any) -> list[float]:
        if isinstance(values, list):
            return [v for item in values for v in flat(item)]
        return [float(values)]

    means = flat([stats.get("x_mean", 0.0), stats.get("y_mean", 0.0)])
    stds = flat([stats.get("x_std", 1.0), stats.get("y_std", 1.0)])
    if all(m == 0.0 for m in means) and all(s == 1.0 for s in stds):
        return "- inputs and outputs are physical; the model applies no normalization"
    return (
        "- inputs and outputs are physical; the normalization (per-field mean and std of the training "
        "trajectories) is part of the model"
    )


def _half_precision_lines(config: dict[str, Any]) -> list[str]:
    """The storage precision of the weights and what rounding them cost, when not float32."""
    half = config.get("half_precision")
    if not half:
        return []
    stored = {
        True: f" (complex ones as {half['dtype']} real and imaginary parts)",
        False: "",
        None: " (real tensors; complex ones stay complex64)",  # stored before complex ones were rounded
    }[half.get("complex_as_real")]
    return [
        f"- weights stored in {half['dtype']}{stored} to keep the zoo small: test rel L2 "
        f"{_fmt(half['rel_l2_stored'])} as stored, {_fmt(half['rel_l2_float32'])} with the float32 weights "
        "(same test trajectories)"
    ]


def _export_line(config: dict[str, Any]) -> str:
    """Which export formats of ``sciml zoo export`` the model supports (ONNX holds no complex weights)."""
    from sciml.zoo.onnx_export import onnx_supported_by_config

    command = f"`sciml zoo export {config['name']} --format exported-program`"
    if onnx_supported_by_config(config):
        return f"- export: {command} (torch.export) or `--format onnx`"
    return f"- export: {command} (torch.export); not to ONNX (complex spectral weights: ONNX has none)"


def _data_lines(config: dict[str, Any]) -> list[str]:
    """The training data: a recipe with its split and the fresh test trajectories, or a file."""
    dataset, evaluation = config.get("dataset", {}), config.get("evaluation", {})
    if "recipe" not in dataset and "recipe_file" in dataset:  # generated, but not a Navier-Stokes recipe
        return [
            "## Data",
            f"- trained on `{dataset.get('path')}`, generated by the recipe `{dataset['recipe_file']}` (no "
            "fresh test set is regenerated for the card)",
        ]
    if "recipe" not in dataset:
        return [
            "## Data",
            f"- trained on the file `{dataset.get('path')}` (no recipe: the test set cannot be regenerated)",
        ]
    split = dataset.get("split", {})
    return [
        "## Data",
        f"- recipe {_recipe_line(dataset['recipe'])} (`{dataset.get('recipe_file', '')}`)",
        f"- trained on {dataset.get('train_trajectories')} trajectories (split train/valid/test "
        f"{split.get('train')}/{split.get('valid')}/{split.get('test')}, "
        f"split seed {dataset.get('split_seed')})",
        f"- tested on {evaluation.get('n_trajectories')} fresh trajectories of the same recipe with seed "
        f"{evaluation.get('seed')} (no training trajectory can appear: each depends only on "
        "(seed, index))",
    ]


def _training_lines(training: dict[str, Any]) -> list[str]:
    """The command, epochs, wall time and machine of the training run, and its best validation error."""
    env = training.get("environment", {})
    return [
        "## Training",
        f"- command: `{training.get('command', '-')}`",
        f"- {training.get('epochs')} epochs (weights of epoch {training.get('checkpoint_epoch')}, the best "
        f"on validation), {_fmt(training.get('train_seconds'), 3)} s of training on "
        f"{env.get('device', '?')} ({env.get('threads', '?')} threads, torch {env.get('torch', '?')}, "
        f"{env.get('date', '?')})",
        f"- best validation rel L2: {_fmt(training.get('best_valid_l2'))}",
        *(
            [
                "- loss: the family's own training loss (its `training_loss`), not the rel L2 against the "
                "paired target that the figures on this card measure"
            ]
            if training.get("loss") == "model-defined"
            else []
        ),
    ]


def _test_metric_lines(name: str, metrics: dict[str, Any] | None, other_recipe: bool = False) -> list[str]:
    """The errors on fresh test trajectories (and the rollout curve) with the command reproducing them."""
    if not metrics and other_recipe:
        return [
            "## Test metrics",
            "None regenerated (the data recipe is not a flow recipe: the card evaluates no fresh test set).",
        ]
    if not metrics:
        return ["## Test metrics", "None recorded (the model was not trained on a recipe)."]
    lines = [
        "## Test metrics",
        f"On {metrics['n_trajectories']} fresh test trajectories ({metrics['n_samples']} samples), "
        "relative errors per sample, averaged:",
        "",
        "| error | mean | std | median |",
        "|---|---|---|---|",
    ]
    for key, (label, _) in ERRORS.items():
        m = metrics[key]
        lines.append(f"| {label} | {_fmt(m['mean'])} | {_fmt(m['std'])} | {_fmt(m['median'])} |")
    if "rollout_l2" in metrics:
        curve = ", ".join(_fmt(v, 3) for v in metrics["rollout_l2"])
        lines += ["", f"Rollout rel L2 per predicted frame (mean over trajectories): {curve}"]
    return [
        *lines,
        "",
        f"Reproduce: `python -m sciml.evaluate zoo:{name}` (generates the test trajectories, then checks "
        "every number above within 2%).",
    ]


LIMITS = [
    "## Limits",
    "- Trained on one viscosity, forcing and resolution; outside them (other nu, other forcing, longer "
    "horizons than trained) expect larger errors.",
    "- Small, CPU-trained model with a short budget: it shows the family working end to end, not the "
    "papers' best accuracy.",
]
"""The limits every card of a model trained on Navier-Stokes trajectories states."""

OTHER_DATA_LIMITS = [
    "## Limits",
    "- Trained only on the data named above; on other data (other scenes, resolutions or equations) "
    "expect weaker results.",
    LIMITS[-1],
]
"""The limits of a card of a model trained on a file or on another kind of recipe (e.g. DCDM's)."""


def _dataset_id(config: dict[str, Any]) -> str | None:
    """The data the model was trained on: its recipe's name, else the stem of its data file."""
    dataset = config.get("dataset", {})
    if "recipe" in dataset:
        return str(dataset["recipe"]["name"])
    return Path(str(dataset["path"])).stem if dataset.get("path") else None


def _model_index(config: dict[str, Any], dataset_id: str | None) -> list[dict[str, Any]]:
    """The card's test metrics (mean relative errors on fresh trajectories) as the Hub's ``model-index``."""
    metrics = config.get("metrics")
    if not metrics:
        return []
    evaluation = config.get("evaluation", {})
    result = {
        "task": {"type": "other", "name": f"PDE surrogate: {_task_line(config)}"},
        "dataset": {
            "type": dataset_id or "unknown",
            "name": f"{dataset_id}: {metrics['n_trajectories']} fresh test trajectories "
            f"(seed {evaluation.get('seed', metrics.get('seed'))})",
            "split": "test",
        },
        "metrics": [
            {"type": kind, "name": f"{label} (mean)", "value": float(metrics[key]["mean"])}
            for key, (label, kind) in ERRORS.items()
        ],
    }
    return [{"name": str(config["name"]), "results": [result]}]


def hub_metadata(config: dict[str, Any]) -> dict[str, Any]:
    """The Hugging Face Hub's model-card metadata of a pretrained model.

    ``library_name: sciml``, the ``license`` (``config["license"]`` or the package's, MIT), ``tags`` (the
    family and the field), ``datasets`` (the recipe's name) and the card's test metrics as ``model-index``.
    """
    dataset_id = _dataset_id(config)
    tags = ["sciml", "neural-operator", str(config["model"]["name"]), "pde", "fluid-dynamics"]
    if "recipe" in config.get("dataset", {}):
        tags.append("navier-stokes")
    metadata: dict[str, Any] = {
        "library_name": "sciml",
        "license": str(config.get("license") or DEFAULT_LICENSE),
        "tags": tags,
    }
    if dataset_id:
        metadata["datasets"] = [dataset_id]
    model_index = _model_index(config, dataset_id)
    if model_index:
        metadata["model-index"] = model_index
    return metadata


def front_matter_text(config: dict[str, Any]) -> str:
    """:func:`hub_metadata` as the YAML block a Hub card starts with (``---`` lines, then a blank line)."""
    text = yaml.safe_dump(hub_metadata(config), sort_keys=False, allow_unicode=True, width=1000)
    return f"---\n{text}---\n\n"
