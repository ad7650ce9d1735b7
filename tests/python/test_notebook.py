"""The tour notebook, executed headless by a real Jupyter kernel (nbclient
and ipykernel) running this test's Python, with assertions on its outputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "notebooks" / "tour.ipynb"
KERNEL = "polyrelay-tests"


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernel spec running this interpreter, found first on JUPYTER_PATH,
    so no kernel installed elsewhere on the machine is used."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    return KERNEL


def outputs(cell: Any, mime: str) -> List[str]:
    """Every output of ``cell`` in ``mime`` (display, update and result)."""
    found = []
    for output in cell.get("outputs", []):
        data: Dict[str, Any] = output.get("data", {})
        if mime in data:
            found.append(data[mime])
    return found


class RecordingClient(NotebookClient):
    """Runs a notebook, keeping every ``update_display_data`` message (the
    final notebook only shows each display's last state)."""

    updates: List[Tuple[Any, Dict[str, Any]]]

    def process_message(self, msg: Dict[str, Any], cell: Any, cell_index: int) -> Any:
        if msg["msg_type"] == "update_display_data":
            self.updates.append((cell.get("id"), msg["content"]["data"]))
        return super().process_message(msg, cell, cell_index)


def test_the_tour_notebook_runs_in_a_real_kernel(kernel: str, tmp_path: Path) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    runner = RecordingClient(
        notebook,
        kernel_name=kernel,
        timeout=120,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    runner.updates = []
    runner.execute()
    cells = {cell.get("id"): cell for cell in notebook.cells}
    for cell in notebook.cells:
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, (cell.get("id"), errors)

    [sync_html] = outputs(cells["sync-call"], "text/html")
    assert "weather.current" in sync_html and "open-meteo" in sync_html
    [fallback_html] = outputs(cells["fallback"], "text/html")
    assert "met-norway" in fallback_html and "503" in fallback_html

    [health_html] = outputs(cells["health"], "text/html")
    assert "<table>" in health_html and "weather.current" in health_html
    [stats_html] = outputs(cells["stats"], "text/html")
    assert "open-meteo" in stats_html and "met-norway" in stats_html

    [bar, batch_text] = outputs(cells["batch"], "text/html") + outputs(
        cells["batch"], "text/plain"
    )[-1:]
    assert '<progress value="4" max="4"' in bar, "the bar ended full"
    assert batch_text == (
        "[('Oslo', 'open-meteo', False),\n"
        " ('Berlin', 'open-meteo', True),\n"
        " ('Rome', 'open-meteo', False),\n"
        " ('Madrid', 'open-meteo', False)]"
    )

    [rates_html] = outputs(cells["async-call"], "text/html")
    assert "finance.fx_rates" in rates_html
    [async_bar] = outputs(cells["async-batch"], "text/html")
    assert '<progress value="4" max="4"' in async_bar
    [async_batch] = outputs(cells["async-batch"], "text/plain")[-1:]
    assert async_batch == (
        "[('Oslo', False), ('Berlin', False), ('Rome', True), ('Madrid', False)]"
    )

    # The streamed answer was shown as it arrived: the display was updated
    # with partial texts before the whole one.
    answer = "The capital of France is Paris."
    shown = [data["text/plain"] for cell, data in runner.updates if cell == "stream"]
    assert shown and shown[-1] == answer
    assert any(answer.startswith(text) and text != answer for text in shown), shown
    [stream_html] = outputs(cells["stream"], "text/html")
    assert stream_html == f'<div style="white-space:pre-wrap">{answer}</div>'
    assert outputs(cells["stream"], "text/plain")[-1] == "('groq', 8)"
    [async_texts] = outputs(cells["astream"], "text/plain")[-1:]
    assert async_texts == "['The', ' capital', ' of', ' France', ' is', ' Paris', '.']"
