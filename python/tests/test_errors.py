"""Bad input raises the right baracuda.Error subclass, with the library's sentence, and
writes nothing."""
import numpy as np
import pytest

import baracuda
from conftest import CUDA, torch


def _sdpa(dtype="f32", **kw):
    desc = dict(batch=1, q_heads=2, kv_heads=1, q_len=3, kv_len=4, head_dim_qk=8, head_dim_v=8, scale=0.5,
                dtype=dtype)
    desc.update(kw)
    return baracuda.sdpa_fwd.plan(**desc)


def _tensors(rng, kv_len=4):
    q = rng.standard_normal((1, 2, 3, 8)).astype(np.float32)
    k = rng.standard_normal((1, 1, kv_len, 8)).astype(np.float32)
    return q, k, k.copy(), np.full((1, 2, 3, 8), np.nan, np.float32)


def test_hierarchy():
    for cls, status in ((baracuda.InvalidProblem, 1), (baracuda.Unsupported, 2), (baracuda.BufferTooSmall, 3),
                        (baracuda.WorkspaceTooSmall, 4), (baracuda.OutOfRange, 5), (baracuda.DeviceError, 6),
                        (baracuda.NoDevice, 7)):
        assert issubclass(cls, baracuda.Error) and cls.status == status


def test_invalid_shape_writes_nothing(rng):
    q, k, v, y = _tensors(rng, kv_len=5)
    with pytest.raises(baracuda.InvalidProblem, match=r"sdpa_fwd: k.shape\[2\] is 5, expected kv_len = 4"):
        _sdpa().run(q=q, k=k, v=v, y=y)
    assert np.isnan(y).all()


def test_invalid_descriptor():
    with pytest.raises(baracuda.InvalidProblem, match="q_heads"):
        _sdpa(q_heads=3, kv_heads=2)
    with pytest.raises(baracuda.InvalidProblem, match="scale"):
        _sdpa(scale=float("inf"))


def test_missing_and_unknown_fields(rng):
    with pytest.raises(baracuda.InvalidProblem, match="missing scale"):
        baracuda.sdpa_fwd.plan(batch=1, q_heads=2, kv_heads=1, q_len=3, kv_len=4, head_dim_qk=8, head_dim_v=8,
                               dtype="f32")
    with pytest.raises(baracuda.InvalidProblem, match="unknown nonsense"):
        _sdpa(nonsense=1)
    q, k, v, y = _tensors(rng)
    with pytest.raises(baracuda.InvalidProblem, match="missing tensor v"):
        _sdpa().run(q=q, k=k, y=y)
    with pytest.raises(baracuda.InvalidProblem, match="unknown tensor argument out"):
        _sdpa().run(q=q, k=k, v=v, y=y, out=y)
    assert np.isnan(y).all()


def test_unsupported():
    with pytest.raises(baracuda.Unsupported, match="head_dim"):
        _sdpa(head_dim_qk=300, head_dim_v=300)
    with pytest.raises(baracuda.Unsupported):
        _sdpa(dtype="i32")
    with pytest.raises(baracuda.Unsupported):
        baracuda.paged_prefill.plan(batch=1, total_rows=1, q_heads=1, scale=1.0, num_pages=1, kv_heads=1,
                                    page_size=1, head_dim=64, dtype="f32")


def test_dtype_mismatch_writes_nothing(rng):
    q, k, v, y = _tensors(rng)
    with pytest.raises(baracuda.InvalidProblem, match="dtype"):
        _sdpa().run(q=q.astype(np.float64), k=k, v=v, y=y)
    assert np.isnan(y).all()


def test_inner_stride_unsupported(rng):
    q, k, v, y = _tensors(rng)
    qt = np.ascontiguousarray(np.swapaxes(q, 2, 3)).swapaxes(2, 3)  # inner stride 3
    with pytest.raises(baracuda.Unsupported, match="stride"):
        _sdpa().run(q=qt, k=k, v=v, y=y)
    assert np.isnan(y).all()


def test_out_of_range_writes_nothing(rng):
    cache = np.zeros((2, 1, 4, 3), np.float32)
    new = np.ones((2, 1, 2, 3), np.float32)
    plan = baracuda.kv_append.plan(batch=2, heads=1, new_len=2, max_cache_len=4, head_dim_k=3, head_dim_v=3,
                                   dtype="f32")
    with pytest.raises(baracuda.OutOfRange, match="kv_append"):
        plan.run(k_new=new, v_new=new, cache_offsets=np.array([0, 3]), k_cache=cache, v_cache=cache.copy())
    assert not cache.any()


def test_workspace_too_small(rng):
    plan = baracuda.sdpa_bwd.plan(batch=1, q_heads=2, kv_heads=1, q_len=3, kv_len=4, head_dim_qk=8, head_dim_v=8,
                                  scale=0.5, dtype="f32")
    assert plan.workspace_size > 0
    q, k, v, y = _tensors(rng)
    outs = dict(dq=np.full_like(q, np.nan), dk=np.full_like(k, np.nan), dv=np.full_like(k, np.nan))
    with pytest.raises(baracuda.WorkspaceTooSmall, match="workspace"):
        plan.run(q=q, k=k, v=v, y=q, dy=q, lse=np.zeros((1, 2, 3), np.float32), workspace=np.zeros(8, np.uint8),
                 **outs)
    assert all(np.isnan(t).all() for t in outs.values())


def test_buffer_too_small(rng):
    storage = np.full(20, np.nan, np.float32)
    y = np.lib.stride_tricks.as_strided(storage, (1, 2, 3, 8), (192, 96, 32, 4))  # reaches element 47 of 20
    q, k, v, _ = _tensors(rng)
    with pytest.raises(baracuda.BufferTooSmall, match="capacity"):
        _sdpa().run(q=q, k=k, v=v, y=y)
    assert np.isnan(storage).all()


@pytest.mark.skipif(CUDA, reason="a CUDA device is present")
def test_no_device():
    with pytest.raises(baracuda.NoDevice, match="target_cuda"):
        _sdpa(device="cuda:0")


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device (torch.cuda.is_available())")
def test_wrong_device(rng):
    q, k, v, y = _tensors(rng)
    with pytest.raises(baracuda.InvalidProblem, match="plan runs on cuda:0"):
        _sdpa(device="cuda:0").run(q=q, k=k, v=v, y=y)
    assert np.isnan(y).all()


def test_bad_tensor_object():
    with pytest.raises(baracuda.InvalidProblem, match="cannot read a str"):
        _sdpa().run(q="q", k=None, v=None, y=None)


def test_dtype_names():
    assert _sdpa(dtype=np.float32).desc["dtype"] == "f32"
    assert _sdpa(dtype="bfloat16").desc["dtype"] == "bf16"
    with pytest.raises(baracuda.Unsupported, match="dtype"):
        _sdpa(dtype="complex64")


def test_bad_field_values():
    with pytest.raises(baracuda.InvalidProblem, match="desc.batch is 'one', expected an integer"):
        _sdpa(batch="one")
    with pytest.raises(baracuda.InvalidProblem, match="desc.q_len is 2.5"):
        _sdpa(q_len=2.5)
    with pytest.raises(baracuda.InvalidProblem, match="outside int32"):
        _sdpa(kv_len=2 ** 40)
    with pytest.raises(baracuda.InvalidProblem, match="preference"):
        _sdpa(preference="slowest")
