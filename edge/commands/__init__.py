"""CLI jobs, one module each (HELP, add_arguments, run); registered by name in edge/cli.py COMMANDS."""
