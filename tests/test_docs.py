"""The documentation site: every example of ``docs/examples/`` runs and prints what it promises, every example
is shown on a page, and ``mkdocs build --strict`` succeeds (when the ``docs`` extra is installed).

Each example runs as a user would run it: ``python docs/examples/NAME.py`` in a fresh process, in an empty
working directory, on one thread, writing only into ``$SCIML_EXAMPLE_DIR``. The examples check their own
results with asserts; the test also reads the numbers they print.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"
EXAMPLES = sorted((DOCS / "examples").glob("*.py"))
SNIPPET = re.compile(r'^--8<-- "docs/examples/(?P<name>[\w-]+\.py)"$', re.M)

NUMBER = r"([-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?)"
#: per example: (a pattern its output must contain, and the bound its first group must stay below, or None)
PROMISES: dict[str, list[tuple[str, float | None]]] = {
    "chebyshev_tucker": [
        (r"Tucker ranks \(3, 3, 3\)", None),
        (rf"max error at 1000 random points: {NUMBER}", 1e-9),
        (r"integral 3\.33230708709\d \(exact 3\.33230708709\d\)", None),
    ],
    "gp_poisson": [
        (r"measured frequency: \(15\.9\d*,\)", None),
        (rf"relative L2 error {NUMBER}", 2e-3),
    ],
    "multi_gpu": [(rf"trained on \S+ with 1 process\(es\) per node: test rel L2 {NUMBER}", 2.0)],
    "quickstart": [
        (rf"test @16: rel L2 {NUMBER}", 2.0),
        (rf"test @32: rel L2 {NUMBER}", 2.0),
        (r"run folder: \['checkpoints', 'config.yaml', 'metrics.jsonl', 'report'\]", None),
    ],
    "read_formats": [
        *((rf"{name}: 3 samples on \(16, 16\)", None) for name in ("the_well", "fno_mat", "netcdf", "npy")),
        (r"neuralop_pt: 3 samples on \(16, 16\)", None),
        (r"every format read back the same frames", None),
    ],
    "remote_data": [
        (r"the_well over HTTP: fields \['vorticity', 'velocity_x', 'velocity_y'\]", None),
        (rf"a window of 192 KiB moved \d+ KiB \({NUMBER}x\)", 3.0),
        (r"missing\.hdf5: cannot open: not found \(HTTP 404\)", None),
        (r"downloaded to copies/flow\.hdf5, sha256 [0-9a-f]{12}\.\.\., verified", None),
    ],
    "solver_metrics": [
        (rf"relative H\^-1 error of the 32\^2 solve at t = 2: {NUMBER}", 1e-3),
        (rf"relative H\^1 error of the 32\^2 solve at t = 2: {NUMBER}", 1e-3),
    ],
    "train_family": [
        (rf"t1: epoch 1, train loss {NUMBER}, valid rel L2 [\d.]+", 2.0),
        (r"prediction: \(1, 1, 16, 16\)", None),
    ],
    "zoo": [
        (rf"fno_ns64 \(fno\): test rel L2 on its card {NUMBER}", 0.1),
        (r"loaded from the Hub cache, verified: True", None),
    ],
}


def test_every_example_promises_its_output():
    assert sorted(PROMISES) == [path.stem for path in EXAMPLES]


def test_every_example_is_shown_on_a_page():
    shown = {m["name"] for page in DOCS.rglob("*.md") for m in SNIPPET.finditer(page.read_text())}
    assert shown == {path.name for path in EXAMPLES}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.stem)
def test_example_runs_and_prints_its_results(example, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SCIML_EXAMPLE_DIR": str(tmp_path)}
    env.pop("NPROC_PER_NODE", None)  # multi_gpu: one process, whatever the machine
    done = subprocess.run(
        [sys.executable, str(example)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{example.name} failed:\n{done.stdout}\n{done.stderr[-4000:]}"
    for pattern, bound in PROMISES[example.stem]:
        found = re.search(pattern, done.stdout)
        assert found, f"{example.name} did not print /{pattern}/; it printed:\n{done.stdout}"
        if bound is not None:
            assert float(found[1]) < bound, f"{example.name}: {found[0]} (bound {bound})"
    # nothing went to the default places of a run's files (the examples write into $SCIML_EXAMPLE_DIR)
    assert not (tmp_path / ".cache").exists() and not (tmp_path / "runs").exists()


def fresh_site() -> Path | None:
    """The site in ``$SCIML_DOCS_SITE`` (CI builds it strictly just before the tests) if it is newer than
    every source it is made of, else None (the test builds its own)."""
    folder = os.environ.get("SCIML_DOCS_SITE")
    if not folder or not (Path(folder) / "index.html").is_file():
        return None
    sources = [ROOT / "mkdocs.yml", *DOCS.rglob("*"), *(ROOT / "sciml").rglob("*.py")]
    newest = max(p.stat().st_mtime for p in sources if p.is_file() and "__pycache__" not in p.parts)
    return Path(folder) if (Path(folder) / "index.html").stat().st_mtime >= newest else None


def test_the_site_builds_strictly(tmp_path):
    for module in ("mkdocs", "material", "mkdocstrings_handlers.python"):
        pytest.importorskip(module, reason="the docs extra: pip install -e '.[docs]'")
    built = fresh_site()
    site = built or tmp_path / "site"
    if built is None:
        build_site(site, tmp_path)
    # the pages show the examples verbatim (pymdownx.snippets; the code text, once the highlighting is gone)
    pages = [page for page in site.rglob("index.html") if "api" not in page.relative_to(site).parts]
    text = "".join(html.unescape(re.sub(r"<[^>]+>", "", page.read_text())) for page in pages)
    for example in EXAMPLES:
        assert example.read_text().strip() in text, f"{example.name} is not shown as it is"
    # ... and the reST of the docstrings is rewritten (docs/_ext/rst_docstrings.py): math for MathJax,
    # references as code, no role or directive left in the text
    api = "".join(page.read_text() for page in (site / "api").rglob("*.html"))
    assert '<div class="arithmatex">\\[' in api and '<span class="arithmatex">\\(' in api
    assert "<code>PDEProblem</code>" in api
    assert not re.search(r":(math|class|func|meth|mod|data|attr):|\.\. math::", api)


def build_site(site: Path, cwd: Path) -> None:
    """``mkdocs build --strict`` of the repository's site into ``site``; a warning fails the build."""
    config = ROOT / "mkdocs.yml"
    command = [
        sys.executable,
        "-m",
        "mkdocs",
        "build",
        "--strict",
        "-f",
        str(config),
        "--site-dir",
        str(site),
    ]
    environment = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # mkdocs-material's banner about its successor
    done = subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
