"""Discrete operators shared by models, datasets and solvers, below all of them in the layering: the cell-type
pressure Poisson grids and their Laplacians (``poisson``: scene generation, matrix-free and sparse forms).
Import the modules directly."""
