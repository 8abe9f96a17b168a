"""The embedded simulated sky: Galaxy Zoo-like galaxies with votes, ZTF-like alerts, the cached
data sets a profile studies, and the realism test that compares them with real packets."""
