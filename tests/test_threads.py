"""minigen.set_num_threads / get_num_threads (PyTorch's names) and `minigen train --threads`:
both thread pools (Numba's and NumPy's BLAS) follow, bad counts are refused. And the short
spin of NumPy's OpenBLAS threads set at import (set_blas_spin): the library reports what was
asked, still computes, the switch turns it off, nothing breaks where no OpenBLAS is found."""
import os
import subprocess
import sys

import numba
import numpy as np
import pytest

import minigen as mg
from minigen import threads
from minigen.cli import main


@pytest.fixture
def restore_threads():
    numba_before, blas = numba.get_num_threads(), threads._blas_functions()
    blas_before = None if blas is None else blas[1]()
    yield
    numba.set_num_threads(numba_before)
    if blas is not None:
        blas[0](blas_before)


def test_both_pools_follow(restore_threads):
    mg.set_num_threads(1)
    assert mg.get_num_threads() == 1 == numba.get_num_threads()
    if threads.blas_threads() is None:
        pytest.skip("no OpenBLAS among this process's libraries (NumPy built on another BLAS)")
    assert threads.blas_threads() == 1
    most = numba.config.NUMBA_NUM_THREADS
    mg.set_num_threads(most)
    assert threads.blas_threads() == most == mg.get_num_threads()
    a = np.ones((64, 64), np.float32)
    assert (a @ a == 64).all()  # BLAS still computes after being told


@pytest.mark.parametrize("n", [0, -1, 1.5, True, "2"])
def test_bad_counts_are_refused(n):
    with pytest.raises(ValueError, match="set_num_threads"):
        mg.set_num_threads(n)


def test_more_threads_than_the_pool_is_refused():
    with pytest.raises(ValueError, match="more than"):
        mg.set_num_threads(numba.config.NUMBA_NUM_THREADS + 1)


def test_without_a_known_blas_only_numba_is_set(monkeypatch, restore_threads):
    monkeypatch.setattr(threads, "_blas", False)  # as if NumPy's BLAS were not found
    assert threads.blas_threads() is None
    mg.set_num_threads(1)
    assert mg.get_num_threads() == 1


def test_train_threads_option(tmp_path, capsys, restore_threads):
    assert main(["train", "kmeans", "--dataset", "ring", "--n-toy", "200", "--k", "8",
                 "--threads", "1", "--out", str(tmp_path / "run")]) == 0
    assert mg.get_num_threads() == 1
    assert main(["train", "kmeans", "--dataset", "ring", "--threads", "0",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "--threads: must be an integer >= 1" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


# ---- how long NumPy's OpenBLAS threads spin when idle (minigen/threads.py: set_blas_spin)
needs_openblas = pytest.mark.skipif(threads.blas_spin() is None,
                                    reason="no OpenBLAS among this process's libraries")


@pytest.fixture
def restore_spin():
    before = threads.blas_spin()
    yield
    if before is not None:
        threads.set_blas_spin(before or 28)  # 0: OpenBLAS's built-in 2**28


@needs_openblas
def test_the_library_takes_the_spin_and_keeps_working(restore_spin, restore_threads):
    mg.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    threads_before = threads.blas_threads()
    assert threads.set_blas_spin(13) is True
    assert threads.blas_spin() == 13
    assert "OPENBLAS_THREAD_TIMEOUT" not in os.environ  # only OpenBLAS was told
    a = np.arange(256 * 256, dtype=np.float32).reshape(256, 256) % 7
    assert np.array_equal(a @ a, (a.astype(np.float64) @ a).astype(np.float32))
    assert threads.blas_threads() == threads_before  # the restarted pool has its size


@needs_openblas
def test_the_check_reads_the_library_not_the_environment(monkeypatch):
    # planted error: the variable set but OpenBLAS never told to read it again
    before = threads.blas_spin()
    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "9")
    assert threads.blas_spin() == before != 9


@pytest.mark.parametrize("env, spin", [({}, threads.BLAS_SPIN),
                                       ({"MINIGEN_BLAS_SPIN": "default"}, 0),
                                       ({"OPENBLAS_THREAD_TIMEOUT": "6"}, 6),
                                       ({"MINIGEN_BLAS_SPIN": "24"}, 24)])
@needs_openblas
def test_import_sets_the_spin_unless_switched_off(env, spin):
    """2**20 cycles by default; MINIGEN_BLAS_SPIN=default, or the user's own
    OPENBLAS_THREAD_TIMEOUT, keeps OpenBLAS's (0: its built-in 2**28)."""
    code = "import minigen.threads as t; print(t.blas_spin())"
    environ = {k: v for k, v in os.environ.items()
               if k not in ("MINIGEN_BLAS_SPIN", "OPENBLAS_THREAD_TIMEOUT")}
    out = subprocess.run([sys.executable, "-c", code], env={**environ, **env}, check=True,
                         capture_output=True, text=True).stdout
    assert int(out) == spin


@pytest.mark.parametrize("value", [3, 31, True, 20.0, "20"])
def test_bad_spins_are_refused(value):
    with pytest.raises(ValueError, match="set_blas_spin"):
        threads.set_blas_spin(value)


def test_a_bad_switch_says_which_variable(monkeypatch):
    monkeypatch.setenv("MINIGEN_BLAS_SPIN", "long")
    with pytest.raises(ValueError, match="MINIGEN_BLAS_SPIN must be"):
        threads._default_blas_spin()


def test_without_openblas_nothing_is_set(monkeypatch):
    monkeypatch.setattr(threads, "_blas", False)  # as if NumPy's BLAS were not found
    monkeypatch.delenv("MINIGEN_BLAS_SPIN", raising=False)
    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
    assert threads.blas_spin() is None
    assert threads.set_blas_spin(20) is False
    threads._default_blas_spin()  # the import-time default does not fail either


def test_openblas_names_are_found_under_each_spelling():
    class Library:  # as ctypes shows a library: its exported names as attributes
        scipy_openblas_get_config64_ = "wheel"
        cblas_sgemm = "plain"
    assert threads.openblas_function(Library, "openblas_get_config") == "wheel"
    assert threads.openblas_function(Library, "cblas_sgemm") == "plain"
    assert threads.openblas_function(Library, "cblas_dgemm") is None
