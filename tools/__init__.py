"""Developer tools: run each from the repository root as a module
(`python -m tools.make_fake_camera OUT.y4m`)."""
