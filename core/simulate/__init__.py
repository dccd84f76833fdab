"""Synthetic anomalies: Perlin noise, anomaly textures, the paper and surface simulators, and the
torch data set that feeds them to training."""
