"""Writers of generated trajectories in the formats the readers accept (The Well HDF5, FNO .mat v7.3)."""
