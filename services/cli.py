"""The one command line: `profefe <role>`."""
from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="profefe-py", prog_name="profefe")
def main() -> None:
    """profefe-py: a continuous-profiling collector that speaks profefe's HTTP API."""


if __name__ == "__main__":
    main()
