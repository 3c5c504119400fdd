"""The one exception type for problems a user can cause (bad files, flags, masks).

Library code raises `UserError` early with a message that names the file, flag or value and
the problem; the tools in `tools/` print it as one line and exit with code 2.
"""


class UserError(Exception):
    """Bad user input: missing or corrupt file, wrong mask format, size mismatch, bad flag."""
