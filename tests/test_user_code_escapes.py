"""Model code that tries to leave: ``sys.exit``, ``SystemExit``, ``KeyboardInterrupt``, megabytes
of prints. The command line exits 2 with one ``error:`` line (or shows the output cut short); the
app shows an error for that source and keeps serving. (``os._exit`` and native crashes cannot be
caught: see the README.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app.py")

MODEL = """
import sys
from flax import nnx

class Tiny(nnx.Module):
    def __init__(self, rngs):
        self.linear = nnx.Linear(3, 2, rngs=rngs)

def make_model():
    {body}
    return Tiny(nnx.Rngs(0))
"""

ESCAPES = {
    "sys-exit": ("sys.exit(3)", "SystemExit: 3"),
    "sys-exit-no-code": ("sys.exit()", "SystemExit"),
    "raise-system-exit": ("raise SystemExit('bye')", "SystemExit: bye"),
    "keyboard-interrupt": ("raise KeyboardInterrupt", "KeyboardInterrupt"),
}


@pytest.mark.parametrize("body,message", ESCAPES.values(), ids=ESCAPES)
def test_cli_turns_an_escape_into_one_error_line(write_model, cli, body, message):
    path = write_model(MODEL.format(body=body))
    code, out, err = cli("show", f"{path}:make_model")
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error:") and "model.py:10: " + message in lines[-1], err
    assert "Traceback" not in err


def test_an_escape_at_import_time_is_caught_too(write_model, cli):
    path = write_model("import sys\nsys.exit('no imports here')\n")
    code, _, err = cli("show", f"{path}:make_model")
    assert code == 2 and "model.py:2: SystemExit: no imports here" in err.strip().splitlines()[-1]


def test_megabytes_of_prints_are_cut_short(write_model, cli):
    path = write_model(MODEL.format(body="for i in range(100_000): print('x' * 50, i)\n"
                                         "    print('y' * 1_000_000, file=sys.stderr)"))
    code, out, err = cli("show", f"{path}:make_model", "--format", "json")
    assert code == 0 and '"linear' in out
    assert len(err) < 70_000 and "more characters printed by" in err, len(err)
    code, out, err = cli("show", "sample:block:nnx")  # output is ours again
    assert code == 0 and "linear" in out and err == ""


@pytest.fixture
def fresh_app(monkeypatch, tmp_path):
    st.cache_data.clear()
    st.cache_resource.clear()
    monkeypatch.setenv("INSPECTOR_ROOT", str(tmp_path))
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.mark.parametrize("body,message", [ESCAPES["sys-exit"], ESCAPES["keyboard-interrupt"]],
                         ids=["sys-exit", "keyboard-interrupt"])
def test_app_shows_the_escape_as_an_error_and_keeps_serving(fresh_app, write_model, body, message):
    write_model(MODEL.format(body=body))
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.selectbox(key="left_pick").set_value("Other: a factory file or checkpoint directory…").run()
    at.text_input(key="left_text").set_value("model.py:make_model").run()
    assert not at.exception
    assert message in at.error[0].value
    at.selectbox(key="left_pick").set_value("sample:counter:nnx").run()
    assert not at.exception and not at.error
    assert set(at.dataframe[0].value["kind"]) == {"Param", "BatchStat", "Counter"}
