"""On-demand benchmarks (never collected by pytest): run `python -m bench.<name> --help`."""
