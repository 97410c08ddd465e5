"""configs/paper/: each paper's own setting loads, builds the paper's architecture, splits like the paper."""

from pathlib import Path

import pytest

from sciml.datasets.recipes import Recipe
from sciml.datasets.windows import split_by_trajectory
from sciml.models import ModelContext, build_model
from sciml.training.config import load_config

ROOT = Path(__file__).parents[1]
PAPER_CONFIGS = sorted((ROOT / "configs" / "paper").glob("*.yaml"))
# published parameter counts (LSM: thuml scripts, 19.2M); the others as counted from the reference configs
PARAMETERS = {"lsm_ns_v1e-5": 19.2e6}
# (train, test) trajectories where a paper does not use 1000 / 200 (MG-TFNO: 10000 / 2000 at 128^2)
PAPER_SPLITS = {
    name: (10000, 2000)
    for name in ("fno_ns_v1e-3_128", "tfno_ns_v1e-3_128", "mg_tfno_ns_v1e-3_128", "mg_tfno_ns_v1e-3_128_l2")
}


def real_parameters(model) -> int:
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())


# SFNO (Spectral-Refiner) has a protocol of its own (10 epochs, 10 -> 40 frames, 1152 / 128 windows): below
LONG_PROTOCOL_CONFIGS = [p for p in PAPER_CONFIGS if not p.stem.startswith("sfno")]


@pytest.mark.parametrize("path", LONG_PROTOCOL_CONFIGS, ids=[p.stem for p in LONG_PROTOCOL_CONFIGS])
def test_paper_config_builds_the_papers_model_and_split(path):
    config = load_config(path)
    data = config.data
    recipe = Recipe.from_yaml(ROOT / data.recipe)
    fields = len(data.fields)
    in_channels = data.t_in * fields if data.mode == "window" else fields
    n = recipe.output_resolution
    model = build_model(config.model_name, config.model_kwargs, ModelContext(in_channels, fields, (n, n)))
    if path.stem in PARAMETERS:
        assert real_parameters(model) == pytest.approx(PARAMETERS[path.stem], rel=0.005)
    splits = split_by_trajectory(recipe.n_trajectories, fractions=(data.train, data.valid, data.test))
    assert (len(splits["train"]), len(splits["test"])) == PAPER_SPLITS.get(path.stem, (1000, 200))
    assert not data.normalize  # none of the papers normalizes
    assert config.train.epochs == 500
    if data.mode == "window":  # 10 frames in, 10 out, trained through the rollout
        assert (data.t_in, data.t_out, config.train.unroll, config.eval.rollout_steps) == (10, 1, 10, 10)
        frames = round(recipe.output.t_final / recipe.output.record_every) + 1
        assert (frames - (data.t_in + config.train.unroll)) // data.stride + 1 == 1  # one window each


def test_each_comparison_has_both_sides_on_the_same_data_and_protocol():
    pairs = [("lsm_ns_v1e-5", "fno_ns_v1e-5"), ("t1_ns_v1e-3", "fno_t1_ns_v1e-3")]
    for ours, baseline in pairs:
        a = load_config(ROOT / "configs" / "paper" / f"{ours}.yaml")
        b = load_config(ROOT / "configs" / "paper" / f"{baseline}.yaml")
        assert a.data == b.data
        assert (a.train.epochs, a.train.unroll, a.optim.scheduler) == (
            b.train.epochs,
            b.train.unroll,
            b.optim.scheduler,
        )


# --- TFNO / MG-TFNO (Kossaifi et al., TMLR 2024) at 128^2, and T1's second setting (nu = 1e-4 -> w15) ---
MG_TFNO_PAPER = ("fno_ns_v1e-3_128", "tfno_ns_v1e-3_128", "mg_tfno_ns_v1e-3_128", "mg_tfno_ns_v1e-3_128_l2")
# measured on the 128^2 context, one vorticity channel in and out (the config headers state the same numbers)
MG_TFNO_PARAMETERS = {
    "fno_ns_v1e-3_128": 10_258_305,
    "tfno_ns_v1e-3_128": 543_345,  # 18.9x fewer than the dense FNO
    "mg_tfno_ns_v1e-3_128": 543_793,
    "mg_tfno_ns_v1e-3_128_l2": 544_113,
}


def paper_config(stem: str):
    return load_config(ROOT / "configs" / "paper" / f"{stem}.yaml")


def test_tfno_has_the_papers_tenfold_fewer_parameters_than_its_fno():
    context = ModelContext(1, 1, (128, 128))
    counts = {}
    for stem in MG_TFNO_PAPER:
        config = paper_config(stem)
        counts[stem] = real_parameters(build_model(config.model_name, config.model_kwargs, context))
    assert counts == MG_TFNO_PARAMETERS
    assert counts["fno_ns_v1e-3_128"] >= 10 * counts["tfno_ns_v1e-3_128"]
    # the TFNO is the FNO plus a factorization, and the MG patches run that TFNO
    fno, tfno = paper_config("fno_ns_v1e-3_128").model_kwargs, paper_config("tfno_ns_v1e-3_128").model_kwargs
    assert {k: v for k, v in tfno.items() if k not in ("factorization", "rank")} == fno
    for stem in ("mg_tfno_ns_v1e-3_128", "mg_tfno_ns_v1e-3_128_l2"):
        mg = paper_config(stem).model_kwargs
        inner = {**mg["model_kwargs"], "domain_padding": mg["inner_domain_padding"]}
        assert {k: v for k, v in inner.items() if k != "positional_embedding"} == tfno


def test_mg_tfno_patch_domains_of_the_paper_settings():
    """One level (neuraloperator's config): 84^2 patches, 2.32x smaller than 128^2, short of the issue's 4x;
    two levels (the abstract's "7x"): 48^2, 7.1x smaller."""
    context = ModelContext(1, 1, (128, 128))
    expected = {"mg_tfno_ns_v1e-3_128": (2, 64, 10), "mg_tfno_ns_v1e-3_128_l2": (4, 32, 8)}
    ratios = {}
    for stem, geometry in expected.items():
        config = paper_config(stem)
        model = build_model(config.model_name, config.model_kwargs, context)
        assert model.geometry(128) == geometry
        _, side, pad = geometry
        ratios[stem] = (128 / (side + 2 * pad)) ** 2
    assert ratios["mg_tfno_ns_v1e-3_128"] == pytest.approx(2.32, abs=0.01)
    assert ratios["mg_tfno_ns_v1e-3_128"] < 4 <= ratios["mg_tfno_ns_v1e-3_128_l2"]
    assert ratios["mg_tfno_ns_v1e-3_128_l2"] == pytest.approx(7.11, abs=0.01)


def test_new_comparisons_share_data_and_protocol():
    for group in (MG_TFNO_PAPER, ("t1_ns_v1e-4", "fno_t1_ns_v1e-4")):
        first = paper_config(group[0])
        for stem in group[1:]:
            other = paper_config(stem)
            assert other.data == first.data
            assert (other.optim, other.train.epochs, other.train.unroll) == (
                first.optim,
                first.train.epochs,
                first.train.unroll,
            )
    mg = paper_config("mg_tfno_ns_v1e-3_128")
    assert (mg.data.batch_size, mg.optim.name, mg.optim.lr, mg.train.loss) == (16, "adam", 1e-3, "h1")
    t1 = paper_config("t1_ns_v1e-4")
    assert (t1.data.batch_size, t1.optim.name, t1.train.loss) == (64, "adamw", "spectral")


@pytest.mark.parametrize("stem", [*MG_TFNO_PAPER, "t1_ns_v1e-4", "fno_t1_ns_v1e-4"])
def test_recipe_frames_reach_the_configured_output_time(stem):
    data = paper_config(stem).data
    recipe = Recipe.from_yaml(ROOT / data.recipe)
    frames = round(recipe.output.t_final / recipe.output.record_every) + 1
    assert 0 <= data.input_time < data.output_time < frames
    expected_time = 15.0 if stem.endswith("v1e-4") else 10.0  # T1: w0 -> w15; MG-TFNO: w0 -> w10
    assert data.output_time * recipe.output.record_every == expected_time


def test_nu_1e4_recipe_is_fnos_navier_stokes_v1e4_setting():
    """FNO's ns_V1e-4_N10000_T30 (kairos' nu = 1e-4 file): 256^2 solve, dt 1e-4, 64^2 frames to t = 30."""
    recipe = Recipe.from_yaml(ROOT / "datasets" / "ns_fno_v1e-4.yaml")
    solver, output = recipe.solver, recipe.output
    assert (solver.resolution, solver.viscosity, solver.forcing, solver.dt) == (256, 1e-4, "fno", 1e-4)
    assert (output.resolution, output.t_final, output.record_every) == (64, 30.0, 1.0)


def test_mg_tfno_recipe_is_128_squared_with_the_papers_sample_count():
    recipe = Recipe.from_yaml(ROOT / "datasets" / "ns_fno_v1e-3_128.yaml")
    assert (recipe.solver.resolution, recipe.output_resolution, recipe.solver.viscosity) == (128, 128, 1e-3)
    assert recipe.n_trajectories == 12_000  # 10000 train + 2000 test


# --- SFNO / Spectral-Refiner (Cao et al., ICLR 2025): the paper's architecture, data and recipe ---
def test_sfno_config_builds_the_papers_architecture_and_protocol():
    from sciml.models.st_fno import SpaceTimeFNO

    config = load_config(ROOT / "configs" / "paper" / "sfno_ns_v1e-3.yaml")
    data, optim = config.data, config.optim
    recipe = Recipe.from_yaml(ROOT / data.recipe)
    n = recipe.output_resolution
    model = build_model(config.model_name, config.model_kwargs, ModelContext(data.t_in, data.t_out, (n, n)))
    # measured: torch-cfd @475c738 SFNO(12, 12, 5, 20, beta=0.01, output_steps=40) has 9,242,461 parameters
    # (families.md: ~9.25M; the fine-tuning notebook prints 9,245,131 from an older revision); with weights
    # copied across, the two forwards agree bit for bit in float64
    assert isinstance(model, SpaceTimeFNO) and real_parameters(model) == 9_242_461
    assert (model.latent_steps, len(model.convs) + 1, model.out_conv.time_padding) == (10, 4, True)
    frames = round(recipe.output.t_final / recipe.output.record_every) + 1
    windows = (frames - (data.t_in + data.t_out)) // data.stride + 1
    fractions = (data.train, data.valid, data.test)
    splits = split_by_trajectory(recipe.n_trajectories, fractions=fractions, shuffle=data.shuffle_split)
    counts = tuple(windows * len(splits[k]) for k in ("train", "valid", "test"))
    assert (frames, windows, counts) == (101, 1, (1152, 128, 16))
    assert (data.t_in, data.t_out, data.batch_size, data.normalize) == (10, 40, 4, False)
    assert (optim.name, optim.lr, optim.scheduler.name, config.train.epochs) == ("adam", 1e-2, "onecycle", 10)
    solver, output = recipe.solver, recipe.output
    assert (solver.resolution, solver.viscosity, solver.dt, solver.stepper) == (256, 1e-3, 1e-3, "heun-cn")
    assert (output.warmup, output.t_final, output.record_every, n) == (30.0, 20.0, 0.2, 64)
    assert (recipe.initial_condition.alpha, recipe.initial_condition.tau, solver.forcing) == (2.5, 7.0, "fno")
