"""The walkthrough notebook runs top to bottom, and is committed without outputs."""

from __future__ import annotations

import nbformat
import pytest

from conftest import DATA, REPO

NOTEBOOK = REPO / "notebooks" / "deepfake_detection.ipynb"


def test_notebook_runs_top_to_bottom():
    """Every cell runs without error on the shared data (about three minutes on 2 cores)."""
    if not DATA.is_dir():
        pytest.skip(f"the shared data sets are not at {DATA}")
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    try:
        client.execute()
    except CellExecutionError as error:
        pytest.fail(f"{NOTEBOOK.name} failed: {error}")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, f"cells errored: {[(o.ename, o.evalue) for o in errors]}"
    # The last cell removes the notebook's temporary folder; the cells before it drew the figures.
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 8, f"expected the notebook's figures, got {len(images)} images"


def test_committed_notebook_has_no_outputs():
    """Outputs stay out of git: they are large, and they would go stale with every run."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not dirty, f"{NOTEBOOK.name} has outputs in cells {dirty}: clear them before committing"
