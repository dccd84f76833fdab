"""Files: checkpoints, the HDF5 export, output-path safety and atomic temporary files."""
