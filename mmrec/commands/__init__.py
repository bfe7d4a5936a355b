"""Command-line front ends, one module per subcommand (see mmrec.cli)."""
