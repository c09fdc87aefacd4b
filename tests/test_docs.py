"""The docs a new user follows point at things that exist in a clone of this repository."""

from __future__ import annotations

import re

import pytest
from serverprocs import REPO

DOCS = ["README.md", "examples/docker/README.md", "examples/kubernetes/README.md"]


@pytest.mark.parametrize("doc", DOCS)
def test_no_link_leaves_the_clone(doc: str) -> None:
    """``../shared`` is the developers' folder beside the repository, not in a user's clone."""
    text = (REPO / doc).read_text()
    assert "../shared" not in text
    assert not re.search(r"\]\((?:\.\./)+", text), "a Markdown link climbs out of the clone"


@pytest.mark.parametrize("doc", DOCS)
def test_mounted_folders_exist(doc: str) -> None:
    """A ``-v "$PWD/X:..."`` bind mount of a missing X makes Docker create an empty folder:
    every path would be 404. Examples that mean "your folder" say so (``mysite``)."""
    text = (REPO / doc).read_text()
    for path in re.findall(r'-v "\$PWD/([^":]+):', text):
        assert (REPO / path).is_dir(), f"{doc}: -v $PWD/{path} does not exist in the clone"


def test_python_api_is_above_the_examples_that_point_to_it() -> None:
    readme = (REPO / "README.md").read_text()
    api = readme.index("## Python API")
    mention = readme.index("with the Python API above")
    assert api < mention
    assert "Python API below" not in readme
