"""The one exception type for user mistakes, shared by all three packages.

engines sits at the bottom of the dependency graph (trainer -> engines <- edge), so the error lives here.
A MestreamError message is one line that names the bad value, what was expected and the fix; the CLI
prints it without a traceback and exits non-zero.
"""


class MestreamError(Exception):
    """A user-facing error: bad path, bad value, mismatched artifact. Message is shown as-is."""


def missing_extra(package: str, extra: str) -> MestreamError:
    """The error for a heavy optional dependency that is not installed."""
    return MestreamError(
        f"{package} is not installed; it comes with the [{extra}] extra: pip install 'mestream[{extra}]'"
    )
