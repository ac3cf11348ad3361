"""The ``debleed`` command line: a thin click layer over denoiser/, training/ and
reaper_bridge/."""
