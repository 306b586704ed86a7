"""The compute: preset table and request resolution, prompt building, size/frame grids, model families."""
