"""Built-in readers; importing this package registers each of them with the format registry."""

from sciml.datasets.readers import (  # noqa: F401
    fno_mat,
    netcdf,
    neuralop_pt,
    numpy_npy,
    pdebench,
    the_well,
)
