"""The README's OAuth server section runs as written."""

from tests.docs import python_blocks


def test_oauth_server_readme_examples_run() -> None:
    blocks = python_blocks("The OAuth server")
    assert blocks
    for block in blocks:
        exec(compile(block, "README.md#the-oauth-server", "exec"), {})  # noqa: S102
