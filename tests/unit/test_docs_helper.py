"""The README example extractor that each area's tests use."""

import pytest

from tests.docs import code_blocks, python_blocks

MARKDOWN = """# title

## First

```python
a = 1
```

text

```bash
not python
```

### Sub

```python
b = 2
```

## Second

```python
c = 3
```
"""


def test_blocks_of_a_section_include_its_subsections_only() -> None:
    assert python_blocks("First", MARKDOWN) == ["a = 1\n", "b = 2\n"]
    assert python_blocks("Sub", MARKDOWN) == ["b = 2\n"]
    assert python_blocks("Second", MARKDOWN) == ["c = 3\n"]


def test_missing_heading_is_an_error() -> None:
    with pytest.raises(LookupError):
        python_blocks("Third", MARKDOWN)


def test_reads_the_real_readme() -> None:
    assert python_blocks("Dependencies") == []


def test_comment_lines_inside_code_blocks_are_not_headings() -> None:
    markdown = "## A\n\n```python\n# a comment\nx = 1\n```\n\n```bash\n# also\nls\n```\n## B\n"
    assert python_blocks("A", markdown) == ["# a comment\nx = 1\n"]
    assert code_blocks("A", "bash", markdown) == ["# also\nls\n"]
