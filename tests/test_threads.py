"""minigen.set_num_threads / get_num_threads (PyTorch's names) and `minigen train --threads`:
both thread pools (Numba's and NumPy's BLAS) follow, bad counts are refused."""
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
