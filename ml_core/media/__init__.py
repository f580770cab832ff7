"""Video in, faces out: probing and sampling (video), face finding (faces, hog_exact), crops (extraction)."""
