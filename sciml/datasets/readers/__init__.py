"""Built-in readers; importing this package registers each of them with the format registry."""

from sciml.datasets.readers import pdebench, the_well  # noqa: F401
