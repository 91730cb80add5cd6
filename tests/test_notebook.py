"""notebooks/ablations.ipynb runs top to bottom on a fresh ablation folder (so it cannot rot)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from genre_tagger.training.ablation import run_ablation  # noqa: E402
from genre_tagger.data.synthetic import write_catalog  # noqa: E402

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "ablations.ipynb"


@pytest.fixture(scope="module")
def ablation_dir(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: threads only cost time on a busy machine
    try:
        root = tmp_path_factory.mktemp("nb")
        config = root / "fast.yaml"
        config.write_text("trainer: {max_epochs: 2, patience: 2}\nencoder_pretraining: {max_epochs: 1, patience: 1}\n")
        manifest = write_catalog(root / "catalog", n_albums=48, seed=5, n_labels=20, track_seconds=1.0,
                                 split_fractions=(0.6, 0.2, 0.2), progress=False, workers=0)
        run_ablation(manifest, root / "ablation", config_files=["experiment/tiny", str(config)], progress=False)
    finally:
        torch.set_num_threads(threads)
    return root / "ablation"


def test_committed_notebook_has_no_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None


def test_notebook_executes_on_an_ablation_folder(ablation_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("GENRE_TAGGER_ABLATION_DIR", str(ablation_dir))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=180, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    texts = [output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
             for output in cell.outputs if output.output_type == "stream"]
    assert any("evaluable labels gain from fusion" in text for text in texts)
    images = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
              if "image/png" in output.get("data", {})]
    assert len(images) >= 2  # the ablation chart and the histogram
